import type { App } from '../../compose/model.js';
import type { UpdateStrategy } from '../../protocol/types.js';
import { dependenciesOf, oneShotServices, startOrder } from './order.js';
import { networksToRemove, resourcesToCreate, type PresentNetwork, type ResourceStep } from './resources.js';

export type { PresentNetwork } from './resources.js';

/**
 * The reconciler's planner: a pure function from (what is on the device, what is desired) to typed
 * steps, as balena-supervisor does it. The deployer executes the steps one at a time; a rollback is just
 * a plan towards the last good state. A container belongs to (service, spec hash): the same spec in a
 * new revision keeps its container, so unchanged services are never restarted by a deploy (unless a
 * dependency they declared `restart: true` on is replaced).
 *
 * Order: the app's volumes and networks first; containers created and started in `depends_on` order,
 * a start waiting for its dependencies' `service_healthy` / `service_completed_successfully`; stopped
 * in the reverse order (dependents first); the old containers removed after the health window, and
 * the app's networks nobody wants any more after them.
 */

/** A container the agent deployed (recognised by its berth.service / berth.spec labels). */
export interface ManagedContainer {
  readonly id: string;
  readonly name: string;
  readonly service: string;
  readonly hash: string;
  readonly running: boolean;
}

/** What the planner knows of the device. */
export interface Present {
  readonly containers: readonly ManagedContainer[];
  readonly networks: readonly PresentNetwork[];
  /** Names of the named volumes on the device. */
  readonly volumes: ReadonlySet<string>;
}

export interface PlanOptions {
  readonly strategy: UpdateStrategy;
  /**
   * This revision's deploy was interrupted (the agent died) before its health window was over: the
   * window is run again over every desired service, even when nothing is left to start, so a resumed
   * deploy never counts as applied without one (issue 23 item 2).
   */
  readonly resumed?: boolean;
}

export type DependencyCondition = 'service_healthy' | 'service_completed_successfully';

export type Step =
  | ResourceStep
  | { readonly kind: 'pull'; readonly service: string; readonly image: string }
  | { readonly kind: 'create'; readonly service: string; readonly hash: string }
  | { readonly kind: 'stop'; readonly service: string; readonly id: string; readonly name: string }
  /** Waits until `service` (whose container is of `hash`) meets `condition`; `dependent` starts next. */
  | { readonly kind: 'await-dependency'; readonly service: string; readonly hash: string; readonly condition: DependencyCondition; readonly dependent: string }
  | { readonly kind: 'start'; readonly service: string; readonly hash: string }
  /** The health window over `services`; those in `oneShot` are jobs that must exit 0 rather than keep running. */
  | { readonly kind: 'await-healthy'; readonly services: readonly string[]; readonly oneShot: readonly string[] }
  | { readonly kind: 'remove'; readonly service: string; readonly id: string; readonly name: string };

export interface Plan {
  readonly steps: readonly Step[];
  /** Services already running as desired. */
  readonly unchanged: readonly string[];
}

type StopStep = Extract<Step, { kind: 'stop' }>;

export function plan(present: Present, desired: App, opts: PlanOptions): Plan {
  const current = present.containers;
  const resources = resourcesToCreate(present, desired);
  const order = startOrder(desired.services);
  const pulls: Step[] = [];
  const creates: Step[] = [];
  const stops: StopStep[] = [];
  const removes: Step[] = [];
  const unchanged: string[] = [];
  const starting = new Set<string>();

  for (const service of order) {
    const { hash, image, dependsOn } = desired.services.get(service)!;
    const existing = current.find((c) => c.service === service && c.hash === hash);
    // compose's `restart: true`: a dependent restarts when its dependency is replaced or started again.
    const restartedBy = [...dependsOn].some(([dep, d]) => d.restart && starting.has(dep));
    if (existing?.running && !restartedBy) {
      unchanged.push(service);
      continue;
    }
    if (existing?.running) stops.push({ kind: 'stop', service, id: existing.id, name: existing.name });
    if (!existing) {
      pulls.push({ kind: 'pull', service, image });
      creates.push({ kind: 'create', service, hash });
    }
    starting.add(service);
  }
  for (const c of current) {
    if (desired.services.get(c.service)?.hash === c.hash) continue;
    if (c.running) stops.push({ kind: 'stop', service: c.service, id: c.id, name: c.name });
    // Kept (stopped) until the new state has been healthy for the health window: the rollback target.
    removes.push({ kind: 'remove', service: c.service, id: c.id, name: c.name });
  }

  const starts = startSteps(desired, order, starting);
  const windowed = opts.resumed ? order : order.filter((s) => starting.has(s));
  const oneShot = oneShotServices(desired.services);
  const health: Step[] = windowed.length > 0 ? [{ kind: 'await-healthy', services: windowed, oneShot: windowed.filter((s) => oneShot.has(s)) }] : [];
  const stopSteps = stopOrder(stops, order);
  const after = [...health, ...removes, ...networksToRemove(present.networks, desired)];
  const steps = opts.strategy === 'kill-then-download'
    ? [...stopSteps, ...resources, ...pulls, ...creates, ...starts, ...after]
    : [...resources, ...pulls, ...creates, ...stopSteps, ...starts, ...after];
  return { steps, unchanged };
}

/** Starts in dependency order, each after waiting for the conditions its dependencies must meet first. */
function startSteps(desired: App, order: readonly string[], starting: ReadonlySet<string>): Step[] {
  const steps: Step[] = [];
  const awaited = new Set<string>();
  for (const service of order) {
    if (!starting.has(service)) continue;
    const { dependsOn, hash } = desired.services.get(service)!;
    for (const dep of dependenciesOf(desired.services, service)) {
      const { condition } = dependsOn.get(dep)!;
      if (condition === 'service_started' || awaited.has(`${dep} ${condition}`)) continue;
      awaited.add(`${dep} ${condition}`);
      steps.push({ kind: 'await-dependency', service: dep, hash: desired.services.get(dep)!.hash, condition, dependent: service });
    }
    steps.push({ kind: 'start', service, hash });
  }
  return steps;
}

/**
 * Dependents stop before what they depend on: the reverse of the start order. Services the desired
 * state no longer has come first, in the order their containers were listed (nothing desired can
 * depend on them any more).
 */
function stopOrder(stops: readonly StopStep[], order: readonly string[]): StopStep[] {
  const rank = (s: StopStep): number => {
    const i = order.indexOf(s.service);
    return i === -1 ? -order.length : -i;
  };
  return [...stops].sort((a, b) => rank(a) - rank(b));
}
