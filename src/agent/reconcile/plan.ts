import type { App } from '../../compose/model.js';
import type { UpdateStrategy } from '../../protocol/types.js';

/**
 * The reconciler's planner: a pure function from (what runs, what is desired) to typed steps, as
 * balena-supervisor does it. The deployer executes the steps one at a time; a rollback is just a plan
 * towards the last good state. A container belongs to (service, spec hash): the same spec in a new
 * revision keeps its container, so unchanged services are never restarted by a deploy.
 */

/** A container the agent deployed (recognised by its berth.service / berth.spec labels). */
export interface ManagedContainer {
  readonly id: string;
  readonly name: string;
  readonly service: string;
  readonly hash: string;
  readonly running: boolean;
}

export type Step =
  | { readonly kind: 'pull'; readonly service: string; readonly image: string }
  | { readonly kind: 'create'; readonly service: string; readonly hash: string }
  | { readonly kind: 'stop'; readonly service: string; readonly id: string; readonly name: string }
  | { readonly kind: 'start'; readonly service: string; readonly hash: string }
  | { readonly kind: 'await-healthy'; readonly services: readonly string[] }
  | { readonly kind: 'remove'; readonly service: string; readonly id: string; readonly name: string };

export interface Plan {
  readonly steps: readonly Step[];
  /** Services already running as desired. */
  readonly unchanged: readonly string[];
}

export function plan(current: readonly ManagedContainer[], desired: App, strategy: UpdateStrategy): Plan {
  const pulls: Step[] = [];
  const creates: Step[] = [];
  const starts: Array<Extract<Step, { kind: 'start' }>> = [];
  const stops: Step[] = [];
  const removes: Step[] = [];
  const unchanged: string[] = [];
  const wanted = new Map<string, string>();

  // The model keeps services in name order, so the steps come out in a stable order.
  for (const [service, { hash, image }] of desired.services) {
    wanted.set(service, hash);
    const existing = current.find((c) => c.service === service && c.hash === hash);
    if (existing?.running) {
      unchanged.push(service);
    } else {
      if (!existing) {
        pulls.push({ kind: 'pull', service, image });
        creates.push({ kind: 'create', service, hash });
      }
      starts.push({ kind: 'start', service, hash });
    }
  }
  for (const c of current) {
    if (wanted.get(c.service) === c.hash) continue;
    if (c.running) stops.push({ kind: 'stop', service: c.service, id: c.id, name: c.name });
    // Kept (stopped) until the new state has been healthy for the health window: the rollback target.
    removes.push({ kind: 'remove', service: c.service, id: c.id, name: c.name });
  }
  const started = starts.map((s) => s.service);
  const health: Step[] = started.length > 0 ? [{ kind: 'await-healthy', services: started }] : [];
  const steps = strategy === 'kill-then-download'
    ? [...stops, ...pulls, ...creates, ...starts, ...health, ...removes]
    : [...pulls, ...creates, ...stops, ...starts, ...health, ...removes];
  return { steps, unchanged };
}
