import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { writeFileAtomic } from '../host/fsync.js';
import { CONTAINER_MODE, joinedContainerOf } from '../network/mode.js';
import type { RunOptions } from './options.js';
import type { ContainerRecord } from './records.js';
import type { OciSpec } from './spec/types.js';

/**
 * `--network container:X` (compose's `service:S` becomes this in the compose stage): the container
 * runs in X's network namespace and sees X's /etc/hosts, /etc/resolv.conf and hostname, as docker's.
 * The namespace is X's init process's (`/proc/PID/ns/net`): that is X's namespace whatever X's own
 * mode (bridged, none, host, or itself container:), and it is only known while X runs, so it is
 * written into the spec at each start. X is recorded by id, so a rename of X does not break the link.
 * `--pid container:X` and `--ipc container:X` join X's PID and IPC namespaces the same way (only the
 * namespace: no files, no hostname), so the start-time join below serves all three.
 */

/** What the spec builder gets for a joined namespace (the same shape as a bridged container's). */
export interface SharedNetwork {
  readonly namespacePath: string;
  readonly mounts: ReadonlyArray<{ readonly destination: string; readonly source: string }>;
  readonly hostname: string;
}

/** Until the first start the namespace is unknown; the spec must still name a path. */
const UNRESOLVED = '/proc/self/ns/net';

/**
 * Checks a container: mode at create: X exists (`find` throws notFound otherwise), flags docker refuses
 * with it are absent. Returns the options to store (X by full id; a chain container:X → container:Y is
 * followed to Y, whose namespace X is in) and the spec input; `targetDir(id)` is X's directory.
 */
export function prepareSharedNetwork(o: RunOptions, find: (ref: string) => ContainerRecord, targetDir: (id: string) => string): { options: RunOptions; network: SharedNetwork } {
  const ref = joinedContainerOf(o.network)!;
  if (ref === '') throw new BerthError('usage', '--network container: needs a container name or id (container:NAME)');
  if (o.hostname !== undefined) throw new BerthError('invalid', `--hostname conflicts with --network ${o.network}: the container has ${ref}'s hostname`);
  if (o.ipv4Address !== undefined || o.ipv6Address !== undefined || (o.endpoints?.length ?? 0) > 0) throw new BerthError('invalid', `--ip and network endpoints conflict with --network ${o.network}: the container has ${ref}'s interfaces`);
  let target = find(ref);
  for (let seen = 0; joinedContainerOf(target.options.network) !== undefined && seen < 8; seen++) target = find(joinedContainerOf(target.options.network)!);
  return { options: { ...o, network: `${CONTAINER_MODE}${target.id}` }, network: sharedNetworkOf(target, targetDir(target.id)) };
}

/** X's /etc files (when it has its own: bridged containers) and hostname. */
function sharedNetworkOf(target: ContainerRecord, dir: string): SharedNetwork {
  const files = ['resolv.conf', 'hosts'].filter((f) => fs.existsSync(path.join(dir, f)));
  return {
    namespacePath: UNRESOLVED,
    mounts: files.map((f) => ({ destination: `/etc/${f}`, source: path.join(dir, f) })),
    hostname: target.options.hostname ?? target.id.slice(0, 12),
  };
}

/** The namespaces a container may take from another: the option that says so, and its flag for messages. */
const JOINABLE = [
  { type: 'network', flag: '--network', of: (o: RunOptions) => o.network },
  { type: 'pid', flag: '--pid', of: (o: RunOptions) => o.pidMode },
  { type: 'ipc', flag: '--ipc', of: (o: RunOptions) => o.ipcMode },
] as const;

/**
 * `--pid container:X` / `--ipc container:X` at create: X must exist; it is stored by full id (as
 * `--network container:X` is), so a rename of X does not break the link. Its namespace is joined at
 * each start ({@link joinRunningNamespaces}). Other options are returned unchanged.
 */
export function resolveJoinedNamespaces(o: RunOptions, find: (ref: string) => ContainerRecord): RunOptions {
  const byId = (mode: string | undefined): string | undefined => {
    const ref = mode === undefined ? undefined : joinedContainerOf(mode);
    return ref === undefined ? mode : `${CONTAINER_MODE}${find(ref).id}`;
  };
  return {
    ...o,
    ...(o.pidMode !== undefined && { pidMode: byId(o.pidMode) as RunOptions['pidMode'] }),
    ...(o.ipcMode !== undefined && { ipcMode: byId(o.ipcMode) as RunOptions['ipcMode'] }),
  };
}

/**
 * Before a start of a container: each namespace it joins (`--network`, `--pid`, `--ipc container:X`)
 * is pointed in its spec (`configPath`) at X's as it is now (`/proc/PID/ns/…` of X's init), since X's
 * namespaces exist only while X runs. Refuses (`conflict`) when X is not running, (`notFound`) when X
 * was removed, naming X and the flag.
 */
export function joinRunningNamespaces(c: ContainerRecord, configPath: string, find: (ref: string) => ContainerRecord, pidOf: (id: string) => number | undefined): void {
  const joins = JOINABLE.flatMap((j) => {
    const mode = j.of(c.options);
    const ref = mode === undefined ? undefined : joinedContainerOf(mode);
    return ref === undefined ? [] : [{ ...j, ref }];
  });
  if (joins.length === 0) return;
  const paths = new Map<string, string>();
  for (const { type, flag, ref } of joins) {
    const what = type === 'network' ? 'network' : `${type} namespace`;
    let target: ContainerRecord;
    try {
      target = find(ref);
    } catch (err) {
      throw new BerthError('notFound', `cannot start ${c.name}: container ${ref.slice(0, 12)}, whose ${what} it joins, no longer exists`, { cause: err, hint: `recreate ${c.name} with another ${flag}` });
    }
    const pid = target.state === 'running' ? pidOf(target.id) : undefined;
    if (pid === undefined) throw new BerthError('conflict', `cannot start ${c.name}: container ${target.name}, whose ${what} it joins (${flag} container:${target.name}), is not running`, { hint: `berth start ${target.name} first` });
    paths.set(type, `/proc/${pid}/ns/${type === 'network' ? 'net' : type}`);
  }
  const spec = JSON.parse(fs.readFileSync(configPath, 'utf8')) as OciSpec;
  spec.linux.namespaces = [...spec.linux.namespaces.filter((n) => !paths.has(n.type)), ...[...paths].map(([type, p]) => ({ type, path: p }) as OciSpec['linux']['namespaces'][number])];
  writeFileAtomic(configPath, JSON.stringify(spec, null, 2), 0o644, { durable: false });
}
