// The part of a start that runs the container: its root, devices, namespaces to join, binds, network and
// the monitor that runs the runtime. Split from the engine (engine.ts), which keeps the record's side:
// what is running is decided there, before, and recorded there, after.
import path from 'node:path';
import type { BoardInfo } from '../board/index.js';
import type { ImageService } from '../image/service.js';
import type { ContainerNetworking } from '../network/index.js';
import { pinBindSources } from './bind-pin.js';
import { prepareDeviceRules } from './devices-enforce.js';
import type { StartOptions } from './engine-api.js';
import { monitorLogOptions, readContainerPid, startMonitor } from './monitor.js';
import type { OciRuntime } from './oci-runtime.js';
import type { ContainerRecord } from './records.js';
import { prepareRootfs } from './rootfs.js';
import { joinRunningNamespaces } from './shared-network.js';
import { setConsoleSize } from './update.js';

/** What a start needs from the engine that owns the state root. */
export interface LaunchContext {
  readonly images: ImageService;
  readonly networking: ContainerNetworking;
  readonly board: BoardInfo;
  readonly dir: (id: string) => string;
  readonly stateDir: (id: string) => string;
  /** The container's cgroup v2 directory, where the runtime enforces cgroups. */
  readonly cgroupDir: (id: string) => string;
  /** A container by name or id (whose namespaces `c` joins). */
  readonly find: (ref: string) => ContainerRecord;
}

/**
 * Runs `c` under a new berth-monitor with runtime `rt`; resolves once the monitor reports the container
 * started. On failure the container's network is taken down again; bind sources pinned for the runtime
 * are released whatever happens. The caller records the start (and has deleted any earlier run's
 * runtime state: the runtime refuses an id it still knows).
 */
export async function launchContainer(ctx: LaunchContext, c: ContainerRecord, rt: OciRuntime, opts: StartOptions): Promise<void> {
  const dir = ctx.dir(c.id);
  const joinCgroup = prepareDeviceRules(rt, c.id, dir);
  const { overlayOptions } = prepareRootfs(ctx.images.snapshots, ctx.images.records.chain(c.image), dir);
  joinRunningNamespaces(c, path.join(dir, 'config.json'), ctx.find, (id) => readContainerPid(ctx.stateDir(id)));
  if (c.options.tty && opts.consoleSize) setConsoleSize(dir, opts.consoleSize);
  // Mounted for the runtime to copy, detached once it has (bind-pin.ts): whatever happens to the start.
  const pinned = c.options.confineBinds && pinBindSources(dir, c.options.volumes, c.options.confineBinds);
  try {
    await ctx.networking.up(c.id, c.options);
    const proxies = ctx.networking.portProxies(c.id, c.options);
    await startMonitor({
      id: c.id, bundle: dir, stateDir: ctx.stateDir(c.id), runtime: rt,
      ...monitorLogOptions(c.options.log, ctx.board.storage),
      ...(rt.cgroupsEnforced && { cgroupDir: ctx.cgroupDir(c.id) }),
      ...(joinCgroup !== undefined && { joinCgroup }),
      ...(overlayOptions !== undefined && { overlayOptions }),
      cleanup: true,
      durableExit: !opts.autoRemove,
      ...(c.options.tty && { tty: true }),
      ...(proxies.length > 0 && { proxies }),
    }).catch(async (err: unknown) => {
      await ctx.networking.down(c.id, c.options).catch(() => undefined);
      throw err;
    });
  } finally {
    if (pinned) pinned.release();
  }
}
