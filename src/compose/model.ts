import type { RunOptions } from '../runtime/options.js';
import type { DesiredState, UpdateStrategy } from '../protocol/types.js';
import type { Healthcheck } from './healthcheck.js';

/**
 * berth's app model: a compose document (or a desired state, which carries compose's field names)
 * parsed, validated and normalized once (normalize.ts). Everything after that stage (the reconciler,
 * the health monitor, the reported-state builder, `berth compose config`) reads these values and
 * never the raw services again. Values are resolved: sizes in bytes, durations in milliseconds,
 * command strings split into argv, defaults filled in.
 */

/** One service, ready to create: what the engine gets and what the reconciler compares. */
export interface AppService {
  readonly name: string;
  /** The image reference as written (pulled for this board when missing). */
  readonly image: string;
  /**
   * A stable hash of what the service asks for (its compose fields, not the revision): the same hash
   * means the same container, kept across revisions. Carried in the container's labels (labels.ts).
   */
  readonly hash: string;
  /** The run options, `berth run`'s checks passed, with the ownership labels set. */
  readonly run: RunOptions;
  /** Undefined when the service has no healthcheck or disables it. */
  readonly healthcheck?: Healthcheck;
}

/** `x-berth.update` (files) / `update` (desired states), defaults filled in. */
export interface AppUpdatePolicy {
  readonly strategy: UpdateStrategy;
  /** How long new services must stay up (and healthy) before the old revision is removed. */
  readonly healthWindowMs: number;
  readonly onFailure: 'rollback' | 'keep';
}

/** A named volume of the app (top-level `volumes:`); its fields come with the issue that adds volumes. */
export interface AppVolume {
  readonly name: string;
}

/** A network of the app (top-level `networks:`); its fields come with the networking work (src/network/). */
export interface AppNetwork {
  readonly name: string;
}

export interface App {
  /** Compose's project name, when the document has one (`name:`, or the file's directory). */
  readonly name?: string;
  readonly revision: number;
  /** By service name, in name order. */
  readonly services: ReadonlyMap<string, AppService>;
  readonly update: AppUpdatePolicy;
  /**
   * Room for the app's named volumes and networks, which later issues add; empty until then (a file
   * that declares them is refused by the reader).
   */
  readonly volumes: ReadonlyMap<string, AppVolume>;
  readonly networks: ReadonlyMap<string, AppNetwork>;
  /** The desired state this was normalized from, as received: what the store records and the fleet sends. */
  readonly source: DesiredState;
}
