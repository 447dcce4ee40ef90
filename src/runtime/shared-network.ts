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
  if (o.ipv4Address !== undefined || (o.endpoints?.length ?? 0) > 0) throw new BerthError('invalid', `--ip and network endpoints conflict with --network ${o.network}: the container has ${ref}'s interfaces`);
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

/**
 * Before a start of a container: mode container: points its spec (`configPath`) at X's namespace now.
 * Refuses (`conflict`) when X is not running, (`notFound`) when X was removed, naming X.
 */
export function joinRunningNamespace(c: ContainerRecord, configPath: string, find: (ref: string) => ContainerRecord, pidOf: (id: string) => number | undefined): void {
  const ref = joinedContainerOf(c.options.network);
  if (ref === undefined) return;
  let target: ContainerRecord;
  try {
    target = find(ref);
  } catch (err) {
    throw new BerthError('notFound', `cannot start ${c.name}: container ${ref.slice(0, 12)}, whose network it joins, no longer exists`, { cause: err, hint: `recreate ${c.name} with another --network` });
  }
  const pid = target.state === 'running' ? pidOf(target.id) : undefined;
  if (pid === undefined) throw new BerthError('conflict', `cannot start ${c.name}: container ${target.name}, whose network it joins (--network container:${target.name}), is not running`, { hint: `berth start ${target.name} first` });
  const spec = JSON.parse(fs.readFileSync(configPath, 'utf8')) as OciSpec;
  spec.linux.namespaces = [...spec.linux.namespaces.filter((n) => n.type !== 'network'), { type: 'network', path: `/proc/${pid}/ns/net` }];
  writeFileAtomic(configPath, JSON.stringify(spec, null, 2), 0o644, { durable: false });
}
