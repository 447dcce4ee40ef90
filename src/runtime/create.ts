// `create`: a container's files and record from a pulled image, nothing started. Split from the engine
// (engine.ts) because it is the one step that builds everything a start later only uses: the root file
// system, bind and volume sources, inline files, the network's preparation and the OCI spec.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { BoardInfo } from '../board/index.js';
import { priorityOf } from '../cgroup/priority.js';
import { toLinuxResources } from '../cgroup/resources.js';
import { BerthError } from '../errors.js';
import { writeFileAtomic } from '../host/fsync.js';
import type { HostPaths } from '../host/paths.js';
import type { ImageService } from '../image/service.js';
import type { ContainerNetworking } from '../network/index.js';
import { joinedContainerOf } from '../network/mode.js';
import { prepareBindSources } from './bind-pin.js';
import { assertDevicesEnforced } from './devices-enforce.js';
import type { LifecycleOptions } from './engine-api.js';
import { findInitBinary } from './init.js';
import { writeInlineFiles } from './inline-files.js';
import type { OciRuntime } from './oci-runtime.js';
import { validateRunOptions, volumeDataPath, type RunOptions } from './options.js';
import type { ContainerRecord, ContainerRecords } from './records.js';
import { prepareRootfs, removeRootfs } from './rootfs.js';
import { prepareSharedNetwork, resolveJoinedNamespaces } from './shared-network.js';
import { buildSpec, readHostFacts, type SeccompProfiles } from './spec/index.js';

/** What a create needs from the engine that owns the state root. */
export interface CreateContext {
  readonly root: string;
  readonly host: HostPaths;
  readonly board: BoardInfo;
  readonly searchPath: string;
  readonly images: ImageService;
  readonly records: ContainerRecords;
  readonly networking: ContainerNetworking;
  /** The runtime new containers get. */
  readonly runtime: OciRuntime;
  readonly seccomp: SeccompProfiles;
  /** A container's directory under the state root. */
  readonly dir: (id: string) => string;
  /** A container by name or id (for `network_mode: container:NAME` and shared namespaces). */
  readonly lookup: (ref: string) => ContainerRecord;
}

/**
 * Creates a container: validates the options, writes its files and config.json, then inserts its record
 * (last, so a failure leaves no record; the files made so far are removed). Returns the new id.
 */
export function createContainer(ctx: CreateContext, imageRef: string, asked: RunOptions, lifecycle: LifecycleOptions): string {
  validateRunOptions(asked);
  const joined = resolveJoinedNamespaces(asked, ctx.lookup);
  const shared = joinedContainerOf(joined.network) === undefined ? undefined : prepareSharedNetwork(joined, ctx.lookup, ctx.dir);
  const options = shared?.options ?? joined;
  assertDevicesEnforced(ctx.runtime, options.name, options.privileged);
  if (ctx.records.byName(options.name)) throw new BerthError('conflict', `the name "${options.name}" is already in use`, { hint: `berth rm ${options.name}, or choose another --name` });
  const image = ctx.images.find(imageRef);
  const config = ctx.images.config(image.name);
  const id = crypto.randomBytes(32).toString('hex');
  const dir = ctx.dir(id);
  fs.mkdirSync(path.join(dir, 'state'), { recursive: true, mode: 0o700 });
  try {
    for (const v of options.volumes) if (v.kind === 'volume') fs.mkdirSync(volumeDataPath(ctx.root, v.source), { recursive: true, mode: 0o755 });
    // docker's `-v`/compose short syntax creates a missing bind source; a confined container's binds are staged.
    const volumes = prepareBindSources(dir, options.volumes, options.confineBinds);
    const files = writeInlineFiles(dir, options.files);
    const published = ctx.records.list().map((o) => ({ container: o.name, ports: o.options.ports ?? [] }));
    const network = ctx.networking.prepare(id, dir, options, published) ?? shared?.network;
    const stored = network && 'ports' in network ? { ...options, ports: network.ports } : options;
    const { rootfs } = prepareRootfs(ctx.images.snapshots, ctx.images.records.chain(image.name), dir);
    const spec = buildSpec({
      id, image: config, options: { ...stored, volumes: [...volumes, ...files] }, rootfs, stateRoot: ctx.root, host: readHostFacts(ctx.host),
      resources: toLinuxResources(options, ctx.board.containerDefaults, priorityOf(options.labels)), cgroupsEnforced: ctx.runtime.cgroupsEnforced,
      seccomp: ctx.seccomp,
      ...(options.init && { initPath: findInitBinary(ctx.searchPath) }),
      ...(network && { network }),
      ...(shared && { hostname: shared.network.hostname }),
    });
    writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2), 0o644, { durable: !lifecycle.autoRemove });
    ctx.records.insert({ id, name: options.name, image: image.name, imageDigest: image.manifestDigest, options: stored, runtime: ctx.runtime.name, createdAt: Date.now() });
  } catch (err) {
    ctx.networking.networks.release(id);
    removeRootfs(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return id;
}
