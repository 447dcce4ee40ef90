import type { AppService } from '../../compose/model.js';
import { BerthError } from '../../errors.js';

/**
 * `depends_on` as an order: which service starts before which. Pure, used by the planner only. The
 * compose stage validates the graph as it reads a file; this checks again because a desired state
 * from the fleet, or an App built some other way, must never send the planner into a loop.
 */

/**
 * The services in start order: every service after the ones it depends on, in name order where
 * `depends_on` leaves the order free (the model keeps services in name order, so this is stable). A
 * dependency on a service the app does not have is skipped when `required: false` and refused
 * otherwise; a cycle is refused naming it.
 */
export function startOrder(services: ReadonlyMap<string, AppService>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: readonly string[]): void => {
    const seen = state.get(name);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new BerthError('invalid', `services.${name}.depends_on: dependency cycle ${cycle.join(' → ')}`);
    }
    state.set(name, 'visiting');
    for (const dep of dependenciesOf(services, name)) visit(dep, [...path, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of services.keys()) visit(name, []);
  return order;
}

/** The services `name` depends on that the app has, in name order; a required one it lacks is refused. */
export function dependenciesOf(services: ReadonlyMap<string, AppService>, name: string): string[] {
  const deps: string[] = [];
  for (const [dep, d] of services.get(name)?.dependsOn ?? []) {
    if (services.has(dep)) deps.push(dep);
    else if (d.required) throw new BerthError('invalid', `services.${name}.depends_on: service "${dep}" is not in the app`, { hint: `add service ${dep}, or mark the dependency required: false` });
  }
  return deps.sort();
}

/** Services that some other service waits on to exit 0 (`service_completed_successfully`): one-shot jobs, whose exit 0 is no failure. */
export function oneShotServices(services: ReadonlyMap<string, AppService>): Set<string> {
  const out = new Set<string>();
  for (const s of services.values()) {
    for (const [dep, d] of s.dependsOn) if (d.condition === 'service_completed_successfully' && services.has(dep)) out.add(dep);
  }
  return out;
}
