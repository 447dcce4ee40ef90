import { BerthError } from '../errors.js';
import type { ServiceSpec } from '../protocol/types.js';
import type { AppService, ServiceContext, ServiceDependency } from './model.js';
import { namespaceParents } from './service-hash.js';
import { invalidAt, keyPath } from './service-key.js';

/**
 * `depends_on` → AppService.dependsOn, compose's defaults filled in (condition service_started,
 * required true, restart false), and the app-wide check that the graph has no loop. A service in
 * another's network, PID or IPC namespace depends on it implicitly, as compose makes it.
 */

const DEFAULT: ServiceDependency = { condition: 'service_started', restart: false, required: true };

export function serviceDependencies(service: string, svc: ServiceSpec, ctx: ServiceContext): Map<string, ServiceDependency> {
  const at = keyPath(service, 'depends_on');
  const given: Array<[string, ServiceDependency]> = svc.depends_on === undefined ? []
    : Array.isArray(svc.depends_on) ? (svc.depends_on as readonly string[]).map((d) => [d, DEFAULT])
    : Object.entries(svc.depends_on).map(([d, s]) => [d, { condition: s.condition ?? DEFAULT.condition, restart: s.restart ?? false, required: s.required ?? true }]);
  const out = new Map<string, ServiceDependency>();
  for (const [dep, d] of given) {
    if (dep === service) throw invalidAt(at, `service ${service} depends on itself`);
    // compose: a missing optional dependency is skipped; a missing required one is an error.
    if (!ctx.hashes.has(dep)) {
      if (d.required) throw invalidAt(at, `service "${dep}" is not in this app`, 'add the service, or mark the dependency required: false');
      continue;
    }
    out.set(dep, d);
  }
  for (const { parent } of namespaceParents(svc)) if (!out.has(parent) && ctx.hashes.has(parent)) out.set(parent, DEFAULT);
  return out;
}

/** Refuses a `depends_on` loop, naming it (`services.a.depends_on: a → b → a`): no start order exists. */
export function checkDependencyCycles(services: ReadonlyMap<string, AppService>): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: readonly string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const loop = [...path.slice(path.indexOf(name)), name];
      throw new BerthError('invalid', `${keyPath(loop[0]!, 'depends_on')}: services depend on each other in a loop: ${loop.join(' → ')}`);
    }
    state.set(name, 'visiting');
    for (const dep of services.get(name)?.dependsOn.keys() ?? []) visit(dep, [...path, name]);
    state.set(name, 'done');
  };
  for (const name of [...services.keys()].sort()) visit(name, []);
}
