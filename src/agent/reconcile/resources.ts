import type { App } from '../../compose/model.js';
import { BerthError } from '../../errors.js';

/**
 * The app's networks and named volumes in the plan: what must exist before any container is created,
 * and which of the app's own networks can go once the containers that used them are gone. Pure.
 */

/** A network on the device, as the planner sees it. */
export interface PresentNetwork {
  readonly name: string;
  /** The app that created it (the `berth.app` label, compose/labels.ts appOf); undefined for one made by hand. */
  readonly app?: string;
}

export type ResourceStep =
  | { readonly kind: 'create-volume'; readonly volume: string; readonly hostName: string }
  | { readonly kind: 'create-network'; readonly network: string; readonly hostName: string }
  | { readonly kind: 'remove-network'; readonly hostName: string };

/**
 * The networks and volumes to create for `desired`, in key order. An `external` one that does not
 * exist is refused (`notFound`, naming it and its key): a deploy never makes what the app says someone
 * else owns. Volumes are never removed by a deploy (they hold data, as `docker compose down` keeps them).
 */
export function resourcesToCreate(present: { readonly networks: readonly PresentNetwork[]; readonly volumes: ReadonlySet<string> }, desired: App): ResourceStep[] {
  const steps: ResourceStep[] = [];
  for (const v of desired.volumes.values()) {
    if (present.volumes.has(v.hostName)) continue;
    if (v.external) {
      throw new BerthError('notFound', `volumes.${v.name}: external volume ${v.hostName} does not exist`, { hint: `create it first (berth volume create ${v.hostName}), or drop external: true to let the deploy create it` });
    }
    steps.push({ kind: 'create-volume', volume: v.name, hostName: v.hostName });
  }
  const existing = new Set(present.networks.map((n) => n.name));
  for (const n of desired.networks.values()) {
    if (existing.has(n.hostName)) continue;
    if (n.external) {
      throw new BerthError('notFound', `networks.${n.name}: external network ${n.hostName} does not exist`, { hint: `create it first (berth network create ${n.hostName}), or drop external: true to let the deploy create it` });
    }
    steps.push({ kind: 'create-network', network: n.name, hostName: n.hostName });
  }
  return steps;
}

/**
 * The networks a deploy made (labelled with an app) that `desired` no longer has, in name order. Run
 * after the old containers are removed: a network is kept while a container that a rollback could
 * return to still stands on it. Any app's label counts, since a device runs one app at a time: a
 * renamed app's old networks go too.
 */
export function networksToRemove(present: readonly PresentNetwork[], desired: App): ResourceStep[] {
  const wanted = new Set([...desired.networks.values()].map((n) => n.hostName));
  return present
    .filter((n) => n.app !== undefined && !wanted.has(n.name))
    .map((n) => n.name)
    .sort()
    .map((hostName) => ({ kind: 'remove-network' as const, hostName }));
}
