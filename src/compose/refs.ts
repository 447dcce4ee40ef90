import { BerthError } from '../errors.js';
import type { DesiredState } from '../protocol/types.js';
import { DEFAULT_NETWORK, networkKeys, type AppResources } from './top-level.js';

/**
 * The names a service uses that must be declared at the top level (compose refuses a project where
 * they are not): networks, configs and secrets, and in a compose file named volumes. Checked once per
 * desired state, before any service is normalized, so service.ts finds them in the ServiceContext.
 */

/**
 * The named volume a service `volumes:` entry mounts, or undefined for a bind, a tmpfs or an anonymous
 * volume. Short syntax `SRC:DST[:OPTS]`: SRC is a path when it starts with `/`, `.` or `~` (compose's
 * rule), else a volume name; long syntax: `type: volume` with a `source`.
 */
export function namedVolumeOf(entry: unknown): string | undefined {
  if (typeof entry === 'string') {
    const colon = entry.indexOf(':');
    if (colon <= 0) return undefined;
    const source = entry.slice(0, colon);
    return /^[/.~]/.test(source) ? undefined : source;
  }
  if (entry !== null && typeof entry === 'object') {
    const e = entry as { type?: unknown; source?: unknown };
    return e.type === 'volume' && typeof e.source === 'string' && e.source !== '' ? e.source : undefined;
  }
  return undefined;
}

/** The config or secret a service's `configs:`/`secrets:` entry names: `NAME` or `{source: NAME, …}`. */
export function fileSourceOf(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  const source = (entry as { source?: unknown } | null)?.source;
  return typeof source === 'string' ? source : undefined;
}

function undeclared(where: string, kind: string, name: string, section: string): BerthError {
  return new BerthError('invalid', `${where}: ${kind} "${name}" is not declared under top-level ${section}:`, { hint: `add it: ${section}: {${name}: {}}` });
}

/**
 * Throws BerthError('invalid') naming the first reference (`services.S.networks.N`, …) to a network,
 * config or secret the desired state does not declare. Named volumes are not checked here: a desired
 * state may name berth's own volumes directly, as it could before top-level `volumes:` existed (see
 * {@link checkDeclaredVolumes}, which a compose file gets).
 */
export function checkReferences(desired: DesiredState, res: AppResources): void {
  for (const [name, svc] of services(desired)) {
    const at = `services.${name}`;
    for (const n of networkKeys(svc.networks)) {
      // `default` is compose's implicit network: appResources added it for every service naming it.
      if (!res.networks.has(n) && n !== DEFAULT_NETWORK) throw undeclared(`${at}.networks.${n}`, 'network', n, 'networks');
    }
    for (const section of ['configs', 'secrets'] as const) {
      list(svc[section]).forEach((entry, i) => {
        const source = fileSourceOf(entry);
        if (source !== undefined && !res[section].has(source)) throw undeclared(`${at}.${section}[${i}]`, section.slice(0, -1), source, section);
      });
    }
  }
}

/** A compose file's rule for named volumes: each must be declared under top-level `volumes:`, as compose refuses the project otherwise. */
export function checkDeclaredVolumes(desired: DesiredState, res: Pick<AppResources, 'volumes'>): void {
  for (const [name, svc] of services(desired)) {
    list(svc.volumes).forEach((v, i) => {
      const volume = namedVolumeOf(v);
      if (volume !== undefined && !res.volumes.has(volume)) throw undeclared(`services.${name}.volumes[${i}]`, 'volume', volume, 'volumes');
    });
  }
}

/** The services as plain records: the keys read here are typed by service.ts's side of the schema. */
const services = (desired: DesiredState): Array<[string, Record<string, unknown>]> => Object.entries(desired.services).map(([n, s]) => [n, s as unknown as Record<string, unknown>]);

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
