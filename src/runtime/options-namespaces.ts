import { BerthError } from '../errors.js';
import { CONTAINER_MODE } from '../network/mode.js';

/**
 * The parsers of the namespace and resolver flags `berth run` and compose share (`--pid`/`pid`,
 * `--ipc`/`ipc`, `--expose`/`expose`, `--dns-option`/`dns_opt`): one reader per value, `what` naming
 * the flag or the compose key path in errors. compose's `service:S` forms are resolved to
 * `container:<S's container>` by the compose stage before they get here.
 */

/** `--pid`: the host's PID namespace, or another container's (`container:NAME|ID`). Absent = its own. */
export type PidMode = 'host' | `container:${string}`;

/** `--ipc`: `host`, the container's own (`private`, `shareable`: the default), or another container's. */
export type IpcMode = 'host' | 'private' | 'shareable' | `container:${string}`;

/** X of a `container:X` namespace mode, refusing an empty X. */
function joined(value: string, what: string): `container:${string}` {
  if (value.length === CONTAINER_MODE.length) throw new BerthError('usage', `${what}: container: needs a container name or id (container:NAME)`);
  return value as `container:${string}`;
}

export function parsePidMode(value: string, what = '--pid'): PidMode {
  if (value === 'host') return 'host';
  if (value.startsWith(CONTAINER_MODE)) return joined(value, what);
  throw new BerthError('invalid', `${what}: "${value}" is not a PID namespace mode: use host or container:NAME (a container's own namespace is the default)`);
}

export function parseIpcMode(value: string, what = '--ipc'): IpcMode {
  if (value === 'host' || value === 'private' || value === 'shareable') return value;
  if (value.startsWith(CONTAINER_MODE)) return joined(value, what);
  throw new BerthError('invalid', `${what}: "${value}" is not an IPC mode: use host, private, shareable or container:NAME`);
}

/**
 * `--expose`/`expose`: a port or range with an optional protocol, kept as docker keeps it (`80/tcp`,
 * `8000-8010/udp`). Documentation only: nothing is published.
 */
export function parseExpose(value: string | number, what = '--expose'): string {
  const text = String(value);
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/.exec(text);
  const port = (p: string | undefined): boolean => p === undefined || (Number(p) >= 1 && Number(p) <= 65535);
  if (!m || !port(m[1]) || !port(m[2]) || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) {
    throw new BerthError('invalid', `${what}: "${text}" is not a port: use PORT[-END][/tcp|udp|sctp] with ports 1-65535`);
  }
  return `${m[1]}${m[2] !== undefined ? `-${m[2]}` : ''}/${m[3] ?? 'tcp'}`;
}

/**
 * `--dns-option`/`dns_opt`: one resolv.conf option (`ndots:2`, `edns0`). One token: the option is
 * written as an `options` line of the container's resolv.conf, where a space or newline would smuggle
 * in other settings.
 */
export function parseDnsOption(value: string, what = '--dns-option'): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.:-]*$/.test(value) || value.length > 64) throw new BerthError('invalid', `${what}: "${value}" is not a resolver option (one word such as ndots:2 or edns0)`);
  return value;
}
