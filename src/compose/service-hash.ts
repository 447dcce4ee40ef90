import crypto from 'node:crypto';
import { BerthError } from '../errors.js';
import type { ServiceSpec } from '../protocol/types.js';
import type { AppFile } from './model.js';
import { fileSourceOf } from './refs.js';
import { keyPath } from './service-key.js';

/**
 * A service's identity: the hash in its container's name and labels. The same hash means the same
 * container, kept across revisions; a changed one means recreate.
 */

/**
 * A stable hash of what the service asks for. Computed from the compose fields as written, so
 * containers deployed by earlier berth versions keep matching.
 */
export function specHash(svc: ServiceSpec): string {
  const canonical = (v: unknown): unknown =>
    v === null || typeof v !== 'object' ? v : Array.isArray(v) ? v.map(canonical) : Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return crypto.createHash('sha256').update(JSON.stringify(canonical(svc))).digest('hex').slice(0, 12);
}

const fold = (...parts: string[]): string => crypto.createHash('sha256').update(parts.join(':')).digest('hex').slice(0, 12);

/** The app's configs and secrets by key, whose content a service's hash covers. */
export interface HashedFiles {
  readonly configs: ReadonlyMap<string, AppFile>;
  readonly secrets: ReadonlyMap<string, AppFile>;
}

/**
 * The spec hash with the content of every config and secret the service mounts folded in: the
 * service's fields name a config, the bytes live at the top level (read from a file beside the compose
 * file, or inline in a fleet's desired state), so editing the file must still change the hash and
 * recreate the container. A service that mounts none keeps its plain {@link specHash}, so containers
 * deployed before this keep matching. Only a digest of the bytes goes in, never the bytes.
 */
function contentHash(svc: ServiceSpec, files: HashedFiles): string {
  const own = specHash(svc);
  const used = (['configs', 'secrets'] as const).flatMap((section) => (svc[section] ?? []).map((entry) => {
    const name = fileSourceOf(entry);
    const file = name === undefined ? undefined : files[section].get(name);
    // An undeclared reference is refused by refs.ts before any hash is used.
    return file === undefined ? `${section}/${name}:-` : `${section}/${name}:${crypto.createHash('sha256').update(file.content).digest('hex')}`;
  }));
  return used.length === 0 ? own : fold(own, ...used.sort());
}

/** The keys by which a service joins another's namespace (`KEY: service:S`), as compose names them. */
export const NAMESPACE_KEYS = ['network_mode', 'pid', 'ipc'] as const;

/**
 * The services whose namespaces `svc` joins (`network_mode`, `pid` or `ipc` set to `service:S`), with
 * the key that says so; each lives only as long as S's container does.
 */
export function namespaceParents(svc: ServiceSpec): Array<{ readonly key: (typeof NAMESPACE_KEYS)[number]; readonly parent: string }> {
  return NAMESPACE_KEYS.flatMap((key) => {
    const v = svc[key];
    return v?.startsWith('service:') ? [{ key, parent: v.slice('service:'.length) }] : [];
  });
}

/**
 * Every service's hash: its spec and the content of its configs and secrets. A service in another's
 * namespace (`network_mode`/`pid`/`ipc: service:S`) lives only as long as S's container: S's hash is
 * folded into its own, so it is recreated whenever S is (and names the right container). Chains fold
 * all the way; a loop is refused naming it.
 */
export function serviceHashes(services: Readonly<Record<string, ServiceSpec>>, files: HashedFiles): Map<string, string> {
  const out = new Map<string, string>();
  const hashOf = (name: string, path: readonly string[]): string => {
    const done = out.get(name);
    if (done !== undefined) return done;
    const svc = services[name]!;
    const parents = namespaceParents(svc).filter((p) => services[p.parent] !== undefined);
    for (const { key, parent } of parents) {
      if (parent === name) throw new BerthError('invalid', `${keyPath(name, key)}: a service cannot join its own ${key === 'network_mode' ? 'network' : key.toUpperCase()} namespace`);
      if (path.includes(parent)) {
        throw new BerthError('invalid', `${keyPath(name, key)}: services join each other's namespaces in a loop: ${[...path, name, parent].slice(path.indexOf(parent)).join(' → ')}`);
      }
    }
    const own = contentHash(svc, files);
    const joined = [...new Set(parents.map((p) => p.parent))].sort();
    const h = joined.length === 0 ? own : fold(own, ...joined.map((p) => hashOf(p, [...path, name])));
    out.set(name, h);
    return h;
  };
  for (const name of Object.keys(services).sort()) hashOf(name, []);
  return out;
}
