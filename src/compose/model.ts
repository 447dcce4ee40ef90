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
  /** `depends_on`, by service name: the deployer starts a service after these reach their condition. */
  readonly dependsOn: ReadonlyMap<string, ServiceDependency>;
  /** compose `platform`, normalized (`linux/arm64`): the platform to pull; the deployer refuses one the board cannot run. */
  readonly platform?: string;
  /** compose `pull_policy` (service-pull.ts); absent = missing. */
  readonly pullPolicy?: PullPolicy;
}

/**
 * When the deployer pulls a service's image (agent/reconcile/pull-policy.ts): `missing` only when it is
 * not on the device (compose's `if_not_present`), `always` each time the deploy creates the service's
 * container, `never` not at all (the image must be there), `{everyMs}` when the local copy was pulled
 * longer ago than that (compose's `daily`, `weekly`, `every_<duration>`).
 */
export type PullPolicy = 'always' | 'never' | 'missing' | { readonly everyMs: number };

/** `x-berth.update` (files) / `update` (desired states), defaults filled in. */
export interface AppUpdatePolicy {
  readonly strategy: UpdateStrategy;
  /** How long new services must stay up (and healthy) before the old revision is removed. */
  readonly healthWindowMs: number;
  readonly onFailure: 'rollback' | 'keep';
}

/**
 * A named volume of the app (top-level `volumes:`). Services' mounts of it are already resolved in
 * their RunOptions (a `volume` mount of {@link hostName}, or a bind/tmpfs when `driver_opts` say so);
 * this record is what the deployer creates before the services and may remove with the app.
 */
export interface AppVolume {
  /** The key under top-level `volumes:`. */
  readonly name: string;
  /** The volume's name on the device: `name:` when given (or the external name), else `<app>_<key>` as compose does. */
  readonly hostName: string;
  /** `external: true`: must exist already; never created or removed by a deploy. */
  readonly external: boolean;
  /** `driver_opts` of the local driver (`type`, `o`, `device`), as written but for a relative `device`, made absolute under the app's data directory. */
  readonly driverOpts: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * A network of the app: `default` (compose's `<app>_default`, present whenever a service uses it) and
 * those under top-level `networks:`. The deployer creates missing ones (src/network NetworkService)
 * before any container and removes the app's own once no desired service uses them.
 */
export interface AppNetwork {
  /** The key under top-level `networks:` (`default` for the implicit one). */
  readonly name: string;
  /** The network's name on the device: `name:` when given (or the external name), else `<app>_<key>`. */
  readonly hostName: string;
  /** `external: true`: must exist already; never created or removed by a deploy. */
  readonly external: boolean;
  readonly internal: boolean;
  /** `driver_opts` that apply to a bridge (mtu, isolate…), as written. */
  readonly driverOpts: Readonly<Record<string, string>>;
  /** The IPv4 `ipam.config` entry: subnet, gateway, ip_range. */
  readonly ipam?: { readonly subnet?: string; readonly gateway?: string; readonly ipRange?: string };
  /** The IPv6 `ipam.config` entry (only with enable_ipv6): subnet and gateway. */
  readonly ipam6?: { readonly subnet: string; readonly gateway?: string };
  /** `enable_ipv6`: dual-stack, with `ipam6` or a random ULA /64. */
  readonly enableIpv6: boolean;
  readonly labels: Readonly<Record<string, string>>;
}

/** A file mounted read-only into services (top-level `configs:` / `secrets:`). */
export interface AppFile {
  readonly name: string;
  /** The bytes, base64: read from `file:` by the reader (relative to the compose file) or given as `content:`. */
  readonly content: string;
}

/** `depends_on` of a service, long form with defaults filled in. */
export interface ServiceDependency {
  readonly condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
  /** Restart this service when the dependency is updated (compose's `restart: true`). */
  readonly restart: boolean;
  /** `required: false`: a missing dependency is ignored. */
  readonly required: boolean;
}

/**
 * What normalizing one service needs from the rest of the app: normalize.ts builds it from the
 * top-level keys, then service.ts turns each service into an AppService with it.
 */
export interface ServiceContext {
  /** App.name. */
  readonly app: string;
  readonly revision: number;
  readonly networks: ReadonlyMap<string, AppNetwork>;
  readonly volumes: ReadonlyMap<string, AppVolume>;
  readonly configs: ReadonlyMap<string, AppFile>;
  readonly secrets: ReadonlyMap<string, AppFile>;
  /**
   * Where relative bind sources (`./data`) resolve. `berth deploy` makes them absolute against the
   * compose file's directory when it reads the file; what is still relative in a desired state (a fleet
   * deploy) resolves under the app's own data directory on the device, so a fleet file can never name
   * an arbitrary host path by accident.
   */
  readonly dataDir: string;
  /** Every service's spec hash, by service name (for `network_mode: service:S` and `depends_on` restarts). */
  readonly hashes: ReadonlyMap<string, string>;
}

/** The project name of a desired state that names none. */
export const DEFAULT_APP_NAME = 'app';

export interface App {
  /**
   * Compose's project name: `name:`, else the file's directory for files; a desired state without
   * `name` gets {@link DEFAULT_APP_NAME}. Prefixes the app's networks and volumes (`<name>_default`).
   */
  readonly name: string;
  readonly revision: number;
  /** By service name, in name order. */
  readonly services: ReadonlyMap<string, AppService>;
  readonly update: AppUpdatePolicy;
  /** By key under top-level `volumes:`. */
  readonly volumes: ReadonlyMap<string, AppVolume>;
  /** By key: `default` when any service is on it, and the declared ones. */
  readonly networks: ReadonlyMap<string, AppNetwork>;
  readonly configs: ReadonlyMap<string, AppFile>;
  readonly secrets: ReadonlyMap<string, AppFile>;
  /** The desired state this was normalized from, as received: what the store records and the fleet sends. */
  readonly source: DesiredState;
}
