import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BoardInfo } from '../board/index.js';
import { readCgroupLayout } from '../cgroup/layout.js';
import { ensureParent, PARENT_NAME } from '../cgroup/parent.js';
import { priorityOf } from '../cgroup/priority.js';
import { toLinuxResources } from '../cgroup/resources.js';
import { BerthError } from '../errors.js';
import { writeFileAtomic } from '../host/fsync.js';
import type { HostPaths } from '../host/paths.js';
import type { ImageService } from '../image/service.js';
import { createContainerNetworking, type ContainerNetworking } from '../network/index.js';
import { ContainerRecords, type ContainerRecord } from '../store/containers.js';
import { readContainerPid, readExit, monitorAlive, startMonitor } from './monitor.js';
import type { CgroupLayout } from '../cgroup/layout.js';
import { runtimeCall, runtimeDelete, runtimeExec, selectRuntime, type OciRuntime } from './oci-runtime.js';
import { validateRunOptions, volumeDataPath, type RunOptions } from './options.js';
import { prepareRootfs, removeRootfs } from './rootfs.js';
import { buildSpec, readHostFacts } from './spec/index.js';

/** How a container is used, when that lets berth skip work. */
export interface LifecycleOptions {
  /**
   * The caller removes the container as soon as it exits (`run --rm`): its spec and exit record are
   * written atomically but not fsynced. A power cut can then leave them empty, in a container that
   * was to be removed anyway (`berth rm` still works); kill -9 cannot, the rename being atomic.
   */
  readonly autoRemove?: boolean;
}

export interface EngineOptions {
  readonly root: string;
  readonly host: HostPaths;
  readonly board: BoardInfo;
  readonly searchPath: string;
  /** crun or runc; automatic when absent. */
  readonly runtime?: string;
  /** Where cgroup2 is mounted; default: found in mountinfo, else /sys/fs/cgroup. */
  readonly cgroupRoot?: string;
  /** Bridge networking; default: netavark over this engine's store (src/network/index.ts). */
  readonly networking?: ContainerNetworking;
}

/**
 * The container lifecycle over one state root. The database holds what was asked for and the last
 * known state; the monitor's files (monitor.pid, exit) are the truth about what is running, so every
 * read refreshes from them first. A container's files live in `<root>/containers/<id>/`.
 */
export class ContainerEngine {
  readonly records: ContainerRecords;
  /** The runtime new containers get. */
  readonly runtime: OciRuntime;
  private readonly layout: CgroupLayout;
  private readonly runtimes = new Map<string, OciRuntime>();
  /** The cgroup v2 mount; containers live in `<cgroupRoot>/berth/<id>`. */
  readonly cgroupRoot: string;
  private parentReady = false;
  readonly networking: ContainerNetworking;

  constructor(readonly images: ImageService, private readonly opts: EngineOptions) {
    this.records = new ContainerRecords(images.store);
    this.networking = opts.networking ?? createContainerNetworking(images.store, opts.host, opts.searchPath);
    this.layout = readCgroupLayout(opts.host);
    this.runtime = selectRuntime(this.layout, opts.searchPath, opts.runtime);
    this.runtimes.set(this.runtime.name, this.runtime);
    this.cgroupRoot = opts.cgroupRoot ?? this.layout.v2MountPoint ?? '/sys/fs/cgroup';
  }

  /** A container's cgroup v2 directory (where the runtime puts it when limits are enforced). */
  cgroupDir(id: string): string {
    return path.join(this.cgroupRoot, PARENT_NAME, id);
  }

  /**
   * The berth parent cgroup with the board's container budget as `memory.max` (see cgroup/parent.ts).
   * Set before the first start of each engine, so a changed profile or budget applies on the next start.
   */
  ensureParentCgroup(): Record<string, string> | undefined {
    if (!this.runtime.cgroupsEnforced) return undefined;
    const { applied } = ensureParent(this.cgroupRoot, { memoryMaxBytes: this.opts.board.containerBudgetBytes });
    this.parentReady = true;
    return applied;
  }

  /** The runtime a container was created with: a later BERTH_RUNTIME must not change who manages it. */
  runtimeOf(c: Pick<ContainerRecord, 'runtime'>): OciRuntime {
    let rt = this.runtimes.get(c.runtime);
    if (!rt) {
      rt = selectRuntime(this.layout, this.opts.searchPath, c.runtime);
      this.runtimes.set(c.runtime, rt);
    }
    return rt;
  }

  dir(id: string): string {
    return path.join(this.opts.root, 'containers', id);
  }

  stateDir(id: string): string {
    return path.join(this.dir(id), 'state');
  }

  /** Finds a container by name, full id, or unique id prefix. */
  find(nameOrId: string): ContainerRecord {
    return this.refresh(this.lookup(nameOrId));
  }

  /**
   * `find`, with the monitor's exit applied in memory only: for a caller that removes the container
   * right after (`run --rm`) and need not commit the exit first. The monitor's files stay the truth,
   * so if the removal never comes, the next `find` records the exit.
   */
  peek(nameOrId: string): ContainerRecord {
    return this.refresh(this.lookup(nameOrId), false);
  }

  private lookup(nameOrId: string): ContainerRecord {
    const byName = this.records.byName(nameOrId);
    if (byName) return byName;
    if (/^[a-f0-9]{3,64}$/.test(nameOrId)) {
      const matches = this.records.byIdPrefix(nameOrId);
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw new BerthError('conflict', `"${nameOrId}" matches several containers; use more of the id`);
    }
    throw new BerthError('notFound', `no such container: ${nameOrId}`);
  }

  list(): ContainerRecord[] {
    return this.records.list().map((c) => this.refresh(c));
  }

  /** Creates a container from a pulled image: root filesystem, spec, record. Does not start it. */
  create(imageRef: string, options: RunOptions, lifecycle: LifecycleOptions = {}): ContainerRecord {
    validateRunOptions(options);
    if (this.records.byName(options.name)) throw new BerthError('conflict', `the name "${options.name}" is already in use`, { hint: `berth rm ${options.name}, or choose another --name` });
    const image = this.images.find(imageRef);
    const config = this.images.config(image.name);
    const id = crypto.randomBytes(32).toString('hex');
    const dir = this.dir(id);
    fs.mkdirSync(path.join(dir, 'state'), { recursive: true, mode: 0o700 });
    try {
      for (const v of options.volumes) if (v.kind === 'volume') fs.mkdirSync(volumeDataPath(this.opts.root, v.source), { recursive: true, mode: 0o755 });
      const published = this.records.list().map((o) => ({ container: o.name, ports: o.options.ports ?? [] }));
      const network = this.networking.prepare(id, dir, options, published);
      const stored = network ? { ...options, ports: network.ports } : options;
      const { rootfs } = prepareRootfs(this.images.snapshots, this.images.records.chain(image.name), dir);
      const spec = buildSpec({
        id, image: config, options: stored, rootfs, stateRoot: this.opts.root, host: readHostFacts(this.opts.host),
        resources: toLinuxResources(options, this.opts.board.containerDefaults, priorityOf(options.labels)), cgroupsEnforced: this.runtime.cgroupsEnforced,
        ...(network && { network }),
      });
      writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(spec, null, 2), 0o644, { durable: !lifecycle.autoRemove });
      this.records.insert({ id, name: options.name, image: image.name, imageDigest: image.manifestDigest, options: stored, runtime: this.runtime.name, createdAt: Date.now() });
    } catch (err) {
      this.networking.networks.release(id);
      removeRootfs(dir);
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return this.records.get(id)!;
  }

  /** Starts a created or exited container under a new monitor; a running one is left as it is. */
  async start(nameOrId: string, lifecycle: LifecycleOptions = {}): Promise<ContainerRecord> {
    const c = this.find(nameOrId);
    if (c.state === 'running') return c;
    const dir = this.dir(c.id);
    const rt = this.runtimeOf(c);
    const { overlayOptions } = prepareRootfs(this.images.snapshots, this.images.records.chain(c.image), dir);
    await this.deleteRuntimeState(c);
    if (rt.cgroupsEnforced && !this.parentReady) this.ensureParentCgroup();
    const storage = this.opts.board.storage;
    await this.networking.up(c.id, c.options);
    await startMonitor({
      id: c.id, bundle: dir, stateDir: this.stateDir(c.id), runtime: rt,
      logMaxBytes: storage.logMaxBytes, logMaxFiles: storage.logMaxFiles,
      ...(rt.cgroupsEnforced && { cgroupDir: this.cgroupDir(c.id) }),
      ...(overlayOptions !== undefined && { overlayOptions }),
      cleanup: true,
      durableExit: !lifecycle.autoRemove,
    }).catch(async (err: unknown) => {
      await this.networking.down(c.id, c.options).catch(() => undefined);
      throw err;
    });
    this.records.markStarted(c.id, Date.now());
    return this.find(c.id);
  }

  /** Sends the stop signal, waits up to `timeoutS`, then SIGKILL (docker stop). */
  async stop(nameOrId: string, timeoutS?: number): Promise<ContainerRecord> {
    const c = this.find(nameOrId);
    if (c.state !== 'running') return c;
    this.records.markStoppedByUser(c.id);
    const signal = c.options.stopSignal ?? 'SIGTERM';
    await this.signal(c.id, signal);
    if (!(await this.waitExit(c.id, (timeoutS ?? c.options.stopTimeout ?? 10) * 1000))) {
      await this.signal(c.id, 'SIGKILL');
      if (!(await this.waitExit(c.id, 10_000))) throw new BerthError('runtime', `container ${c.name} did not exit after SIGKILL`);
    }
    return this.find(c.id);
  }

  async kill(nameOrId: string, signal = 'SIGKILL'): Promise<ContainerRecord> {
    const c = this.find(nameOrId);
    if (c.state !== 'running') throw new BerthError('conflict', `container ${c.name} is not running`);
    this.records.markStoppedByUser(c.id);
    await this.signal(c.id, signal);
    return c;
  }

  /** Removes a container; a running one only with `force` (killed first). */
  async remove(nameOrId: string, force = false): Promise<ContainerRecord> {
    // The record goes at the end: no need to commit an exit to it first.
    let c = this.peek(nameOrId);
    if (c.state === 'running') {
      if (!force) throw new BerthError('conflict', `container ${c.name} is running`, { hint: `berth stop ${c.name} first, or berth rm -f` });
      await this.signal(c.id, 'SIGKILL');
      await this.waitExit(c.id, 10_000);
      c = this.peek(c.id);
    }
    await this.deleteRuntimeState(c);
    await this.networking.release(c.id, c.options);
    removeRootfs(this.dir(c.id));
    fs.rmSync(this.dir(c.id), { recursive: true, force: true });
    this.records.remove(c.id);
    return c;
  }

  /** Waits for the container's exit record; resolves with it, or undefined after `timeoutMs`. */
  async waitExit(id: string, timeoutMs: number, signal?: AbortSignal): Promise<ContainerRecord | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const c = this.refresh(this.records.get(id)!);
      if (c.state !== 'running') return c;
      if (Date.now() >= deadline) return undefined;
      await sleep(50, undefined, signal ? { signal } : undefined);
    }
  }

  /**
   * The runtime keeps a run's state under the container's id until it is deleted. The monitor deletes it
   * after the exit and says so in the exit record; only when it could not (killed first, or an older
   * monitor) does berth run `runtime delete` itself.
   */
  private async deleteRuntimeState(c: ContainerRecord): Promise<void> {
    if (c.startedAt === undefined || readExit(this.stateDir(c.id))?.cleaned === true) return;
    await runtimeDelete(this.runtimeOf(c), c.id);
  }

  /** Runs `argv` inside a running container (docker exec, without a terminal): for healthchecks. */
  async exec(nameOrId: string, argv: readonly string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const c = this.find(nameOrId);
    if (c.state !== 'running') throw new BerthError('conflict', `container ${c.name} is not running`);
    return runtimeExec(this.runtimeOf(c), c.id, argv, timeoutMs);
  }

  pid(id: string): number | undefined {
    return readContainerPid(this.stateDir(id));
  }

  private async signal(id: string, signal: string): Promise<void> {
    try {
      await runtimeCall(this.runtimeOf(this.records.get(id)!), ['kill', id, signal.replace(/^SIG/, '')]);
    } catch (err) {
      // It may have exited between the check and the signal; that is not an error.
      if (this.refresh(this.records.get(id)!).state === 'running') throw err;
    }
  }

  /** Brings the record up to date with the monitor's files; `persist`: also in the database. */
  private refresh(c: ContainerRecord, persist = true): ContainerRecord {
    if (c.state !== 'running') return c;
    const ended = this.endedRun(c.id);
    if (!ended) return c;
    if (!persist) return { ...c, ...ended };
    this.records.markExited(c.id, ended);
    return this.records.get(c.id)!;
  }

  /** How the current run ended, from the monitor's files; undefined while it runs. */
  private endedRun(id: string): { exitCode: number; oomKilled: boolean; finishedAt: number; state: 'exited' | 'dead' } | undefined {
    const stateDir = this.stateDir(id);
    const exit = readExit(stateDir);
    if (exit) return { exitCode: exit.exitCode, oomKilled: exit.oomKilled, finishedAt: Date.parse(exit.finishedAt) || Date.now(), state: 'exited' };
    // The monitor was killed (or the board rebooted) before the container's exit was recorded.
    if (!monitorAlive(stateDir)) return { exitCode: 255, oomKilled: false, finishedAt: Date.now(), state: 'dead' };
    return undefined;
  }
}
