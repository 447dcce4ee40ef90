import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BoardInfo } from '../board/index.js';
import { readCgroupLayout } from '../cgroup/layout.js';
import { ensureParent, PARENT_NAME } from '../cgroup/parent.js';
import { Cgroup } from '../cgroup/v2.js';
import { BerthError } from '../errors.js';
import { DirWatch } from '../host/dir-watch.js';
import type { HostPaths } from '../host/paths.js';
import type { ImageService } from '../image/service.js';
import type { ConnectOptions, ContainerNetworking, NetworkReconcileReport } from '../network/index.js';
import type { ContainerRecord, ContainerRecords } from './records.js';
import { DB_FILE } from '../store/store.js';
import type { ContainerEngine, ContainerEvent, ContainerStats, ExecResult, LifecycleOptions, ParentMemory, StartOptions, StatsOptions } from './engine-api.js';
import { inspectContainer } from './inspect.js';
import { securityView } from './inspect-security.js';
import { readContainerPid, readExit } from './monitor.js';
import { observeRun, runBegun, withRun } from './run-state.js';
import { createContainer } from './create.js';
import { launchContainer } from './start.js';
import { lookupContainer } from './lookup.js';
import type { CgroupLayout } from '../cgroup/layout.js';
import { runtimeCall, runtimeDelete, runtimeExec, selectRuntime, type OciRuntime } from './oci-runtime.js';
import { validateContainerName, type RunOptions } from './options.js';
import { containerDir, prepareRootfs, removeRootfs } from './rootfs.js';
import { SeccompProfiles } from './spec/index.js';
import { assertDevicesEnforced, releaseDeviceRules } from './devices-enforce.js';
import { releaseBindSources } from './bind-pin.js';
import { spawnExec, type ExecProcess, type ExecSpec } from './exec.js';
import { containerPids } from './top.js';
import { applyUpdate, planUpdate, readBundleSpec, type ContainerUpdate } from './update.js';
import { CgroupStatsReader } from './stats.js';
import { connectTerminal, waitMonitorExit, type TerminalSession, type Terminals, type TerminalSize } from './terminal.js';
import { startExecTerminal } from './terminal-exec.js';
import { checkNoCopyMounted, mountStoppedRoot, type ContainerRoot } from './cp/stopped-root.js';
import { ContainerWatch } from './watch.js';

export interface EngineOptions {
  readonly root: string;
  readonly host: HostPaths;
  readonly board: BoardInfo;
  readonly searchPath: string;
  /** crun or runc; automatic when absent. */
  readonly runtime?: string;
  /** Where cgroup2 is mounted; default: found in mountinfo, else /sys/fs/cgroup. */
  readonly cgroupRoot?: string;
  /** Bridge networking over the same state store (src/network/index.ts); the composition root builds it. */
  readonly networking: ContainerNetworking;
}

/** How long a change that no file reports (a monitor killed before writing its exit) may go unseen by subscribers. */
const SWEEP_MS = 5000;

/**
 * The container lifecycle over one state root (the ContainerEngine contract is in engine-api.ts). The
 * database holds what was asked for and the last known state; the monitor's files (monitor.pid, exit)
 * are the truth about what is running, so every read refreshes from them first. A container's files
 * live in `<root>/containers/<id>/`; nothing outside src/runtime/ knows these paths. The steps live
 * beside it: create.ts (files, spec, record), start.ts (the monitor), run-state.ts (records against
 * the monitor's files), lookup.ts (names and ids).
 */
export class LocalEngine implements ContainerEngine, Terminals {
  /** The runtime new containers get. */
  readonly runtime: OciRuntime;
  private readonly layout: CgroupLayout;
  private readonly runtimes = new Map<string, OciRuntime>();
  /** The cgroup v2 mount; containers live in `<cgroupRoot>/berth/<id>`. */
  private readonly cgroupRoot: string;
  private parentReady = false;
  private readonly watch: ContainerWatch;
  private readonly statsReader = new CgroupStatsReader();
  /** Converted seccomp filters, cached for every container this engine creates (and on disk for the next process). */
  private readonly seccomp: SeccompProfiles;
  readonly networking: ContainerNetworking;

  /** `records`: the containers table of the state store `images` is over; the composition root (src/root.ts) pairs them. */
  constructor(readonly images: ImageService, private readonly records: ContainerRecords, private readonly opts: EngineOptions) {
    this.networking = opts.networking;
    this.seccomp = new SeccompProfiles({ machine: os.machine(), kernel: os.release(), cacheDir: path.join(opts.root, 'seccomp') });
    this.layout = readCgroupLayout(opts.host);
    this.runtime = selectRuntime(this.layout, opts.searchPath, opts.runtime);
    this.runtimes.set(this.runtime.name, this.runtime);
    this.cgroupRoot = opts.cgroupRoot ?? this.layout.v2MountPoint ?? '/sys/fs/cgroup';
    this.watch = new ContainerWatch({
      containersDir: path.join(opts.root, 'containers'), stateDir: (id) => this.stateDir(id), walFile: path.join(opts.root, `${DB_FILE}-wal`),
      list: () => this.list(), sweepMs: SWEEP_MS,
    });
  }

  /** A container's cgroup v2 directory (where the runtime puts it when limits are enforced). */
  private cgroupDir(id: string): string {
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
  private runtimeOf(c: Pick<ContainerRecord, 'runtime'>): OciRuntime {
    let rt = this.runtimes.get(c.runtime);
    if (!rt) {
      rt = selectRuntime(this.layout, this.opts.searchPath, c.runtime);
      this.runtimes.set(c.runtime, rt);
    }
    return rt;
  }

  private dir(id: string): string {
    return containerDir(this.opts.root, id);
  }

  private stateDir(id: string): string {
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
    return lookupContainer(this.records, nameOrId, (c) => this.refresh(c, false));
  }

  list(): ContainerRecord[] {
    return this.records.list().map((c) => this.refresh(c));
  }

  /** Creates a container from a pulled image: root filesystem, spec, record (create.ts). Does not start it. */
  create(imageRef: string, asked: RunOptions, lifecycle: LifecycleOptions = {}): ContainerRecord {
    const { root, host, board, searchPath } = this.opts;
    const id = createContainer({
      root, host, board, searchPath, images: this.images, records: this.records, networking: this.networking, runtime: this.runtime,
      seccomp: this.seccomp, dir: (id) => this.dir(id), lookup: (ref) => this.lookup(ref),
    }, imageRef, asked, lifecycle);
    this.watch.look();
    return this.records.get(id)!;
  }

  /** Starts a created or exited container under a new monitor; a running one is left as it is. */
  async start(nameOrId: string, opts: StartOptions = {}): Promise<ContainerRecord> {
    const c = this.find(nameOrId);
    if (c.state === 'running') return c;
    if (opts.countRestart) this.records.incrementRestarts(c.id);
    checkNoCopyMounted(this.dir(c.id), c.name);
    const rt = this.runtimeOf(c);
    assertDevicesEnforced(rt, c.name, c.options.privileged);
    await this.deleteRuntimeState(c);
    if (rt.cgroupsEnforced && !this.parentReady) this.ensureParentCgroup();
    await launchContainer({
      images: this.images, networking: this.networking, board: this.opts.board, dir: (id) => this.dir(id), stateDir: (id) => this.stateDir(id),
      cgroupDir: (id) => this.cgroupDir(id), find: (ref) => this.find(ref),
    }, c, rt, opts);
    this.statsReader.forget(c.id);
    this.records.markStarted(c.id, Date.now());
    this.watch.look();
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
    this.watch.look();
    return this.find(c.id);
  }

  async kill(nameOrId: string, signal = 'SIGKILL'): Promise<ContainerRecord> {
    const c = this.running(nameOrId);
    this.records.markStoppedByUser(c.id);
    await this.signal(c.id, signal);
    return this.find(c.id);
  }

  /** Removes a container; a running one only with `force` (killed first). */
  async remove(nameOrId: string, force = false): Promise<ContainerRecord> {
    // Subscribers hear of an exit not yet seen before they hear of the removal (a no-op without any).
    this.watch.look();
    // The record goes at the end: no need to commit an exit to it first.
    let c = this.peek(nameOrId);
    if (c.state === 'running') {
      if (!force) throw new BerthError('conflict', `container ${c.name} is running`, { hint: `berth stop ${c.name} first, or berth rm -f` });
      await this.signal(c.id, 'SIGKILL');
      await this.waitExit(c.id, 10_000);
      this.watch.look();
      c = this.peek(c.id);
    }
    await this.deleteRuntimeState(c);
    await this.networking.release(c.id, c.options);
    releaseDeviceRules(this.runtimeOf(c), c.id);
    removeRootfs(this.dir(c.id));
    releaseBindSources(this.dir(c.id));
    fs.rmSync(this.dir(c.id), { recursive: true, force: true });
    this.records.remove(c.id);
    this.statsReader.forget(c.id);
    this.watch.look();
    return c;
  }

  /**
   * Waits on the state directory (inotify; DirWatch's safety wake-up covers a monitor that died
   * without writing), so the exit is seen as soon as the monitor records it.
   */
  async waitExit(nameOrId: string, timeoutMs: number, signal?: AbortSignal): Promise<ContainerRecord | undefined> {
    const { id } = this.lookup(nameOrId);
    const deadline = Date.now() + timeoutMs;
    const watch = new DirWatch(this.stateDir(id), Math.min(500, timeoutMs));
    try {
      for (;;) {
        const c = this.refresh(this.records.get(id)!);
        if (c.state !== 'running') return c;
        if (Date.now() >= deadline || signal?.aborted) return undefined;
        await watch.wait(signal);
      }
    } finally {
      watch.close();
    }
  }

  /**
   * The runtime keeps a run's state under the container's id until it is deleted. The monitor deletes it
   * after the exit and says so in the exit record; only when it could not (killed first, or an older
   * monitor) does berth run `runtime delete` itself.
   */
  private async deleteRuntimeState(c: ContainerRecord): Promise<void> {
    // No start recorded may still mean one began (a start killed midway): run-state.ts.
    if (!runBegun(c, this.stateDir(c.id)) || readExit(this.stateDir(c.id))?.cleaned === true) return;
    await runtimeDelete(this.runtimeOf(c), c.id);
  }

  /** Runs `argv` inside a running container (docker exec, without a terminal): for healthchecks. */
  async exec(nameOrId: string, argv: readonly string[], timeoutMs: number): Promise<ExecResult> {
    const c = this.running(nameOrId);
    return runtimeExec(this.runtimeOf(c), c.id, argv, timeoutMs);
  }

  execProcess(nameOrId: string, spec: ExecSpec): ExecProcess {
    const c = this.running(nameOrId);
    const pid = this.initPid(c);
    return spawnExec(this.runtimeOf(c), c.id, pid, readBundleSpec(this.dir(c.id)).process, spec);
  }

  attachTerminal(nameOrId: string): TerminalSession {
    const c = this.running(nameOrId);
    if (!c.options.tty) throw new BerthError('usage', `container ${c.name} has no terminal (it was not created with -t)`, { hint: `berth logs -f ${c.name} follows its output` });
    const stateDir = this.stateDir(c.id);
    return { connect: () => connectTerminal(stateDir), exit: (signal) => waitMonitorExit(stateDir, signal) };
  }

  async execTerminal(nameOrId: string, spec: ExecSpec, size?: TerminalSize): Promise<TerminalSession | { readonly code: number; readonly message: string }> {
    const c = this.running(nameOrId);
    const dir = this.dir(c.id);
    return startExecTerminal({ runtime: this.runtimeOf(c), id: c.id, bundle: dir, pid: this.initPid(c), base: readBundleSpec(dir).process, spec, ...(size && { size }) });
  }

  processes(nameOrId: string): number[] {
    const c = this.running(nameOrId);
    return containerPids(this.cgroupDir(c.id), this.initPid(c));
  }

  rootPath(nameOrId: string): string {
    return `/proc/${this.initPid(this.running(nameOrId))}/root`;
  }

  openRoot(nameOrId: string): ContainerRoot {
    const c = this.find(nameOrId);
    if (c.state === 'running') return { path: this.rootPath(c.id), close: () => undefined };
    const dir = this.dir(c.id);
    const { overlayOptions } = prepareRootfs(this.images.snapshots, this.images.records.chain(c.image), dir);
    return mountStoppedRoot(dir, overlayOptions, readBundleSpec(dir));
  }

  rename(nameOrId: string, newName: string): ContainerRecord {
    const c = this.find(nameOrId);
    validateContainerName(newName);
    if (this.records.byName(newName)) throw new BerthError('conflict', `the name "${newName}" is already in use`, { hint: `berth rm ${newName}, or choose another name` });
    if (c.name === newName) throw new BerthError('invalid', `container ${c.name} is already named ${newName}`);
    this.records.rename(c.id, newName);
    this.records.updateOptions(c.id, { ...c.options, name: newName });
    this.watch.look();
    return this.find(c.id);
  }

  /** The new resources go into config.json (the next start's) and, when running, the live cgroup. */
  update(nameOrId: string, update: ContainerUpdate): ContainerRecord {
    const c = this.find(nameOrId);
    const plan = planUpdate(c.options, update, this.opts.board.containerDefaults);
    if (this.runtimeOf(c).cgroupsEnforced) applyUpdate(plan, this.dir(c.id), c.state === 'running' ? new Cgroup(this.cgroupDir(c.id)) : undefined);
    this.records.updateOptions(c.id, plan.options);
    this.watch.emit({ type: 'update', id: c.id, name: c.name, at: Date.now() });
    return this.find(c.id);
  }

  private initPid(c: ContainerRecord): number {
    const pid = readContainerPid(this.stateDir(c.id));
    if (pid === undefined) throw new BerthError('conflict', `container ${c.name} is not running`);
    return pid;
  }

  pid(nameOrId: string): number | undefined {
    const c = this.find(nameOrId);
    return c.state === 'running' ? readContainerPid(this.stateDir(c.id)) : undefined;
  }

  inspect(nameOrId: string): Record<string, unknown> {
    const c = this.find(nameOrId);
    const rt = this.runtimeOf(c);
    return inspectContainer(c, {
      board: this.opts.board, runtime: rt, stateDir: this.stateDir(c.id), pid: c.state === 'running' ? readContainerPid(this.stateDir(c.id)) : undefined,
      attachments: this.networking.networks.attachmentsOf(c.id),
      paused: c.state === 'running' && rt.cgroupsEnforced && new Cgroup(this.cgroupDir(c.id)).frozen(),
      security: securityView(this.dir(c.id), rt.devices.note),
    });
  }

  stats(container: string | ContainerRecord, opts: StatsOptions = {}): ContainerStats {
    const c = typeof container === 'string' ? this.find(container) : container;
    const stats = this.statsReader.read(c, this.cgroupDir(c.id), opts.v2Only ? undefined : path.dirname(this.cgroupRoot));
    return stats.measured || c.state !== 'running' ? stats : { ...stats, note: `no cgroup to read on this host (${this.runtimeOf(c).limitsNote})` };
  }

  freeze(nameOrId: string): void {
    this.setFrozen(nameOrId, true);
  }

  async connectNetwork(nameOrId: string, network: string, opts: ConnectOptions = {}): Promise<void> {
    const c = this.find(nameOrId);
    await this.networking.connect(c.id, this.dir(c.id), c.options, network, opts);
  }

  async disconnectNetwork(nameOrId: string, network: string, force = false): Promise<void> {
    const c = this.find(nameOrId);
    await this.networking.disconnect(c.id, this.dir(c.id), c.options, network, force);
  }

  async reconcileNetworking(): Promise<NetworkReconcileReport> {
    return this.networking.reconcile(new Set(this.records.list().map((c) => c.id)));
  }

  thaw(nameOrId: string): void {
    this.setFrozen(nameOrId, false);
  }

  private setFrozen(nameOrId: string, frozen: boolean): void {
    const c = this.running(nameOrId);
    const rt = this.runtimeOf(c);
    if (!rt.cgroupsEnforced) throw new BerthError('host', `cannot ${frozen ? 'freeze' : 'thaw'} ${c.name}: ${rt.limitsNote}`);
    const cg = new Cgroup(this.cgroupDir(c.id));
    if (cg.frozen() === frozen) return;
    cg.setFrozen(frozen);
    this.watch.emit({ type: frozen ? 'freeze' : 'thaw', id: c.id, name: c.name, at: Date.now() });
  }

  logDir(nameOrId: string): string {
    return this.stateDir(this.lookup(nameOrId).id);
  }

  parentMemory(): ParentMemory | undefined {
    if (!this.runtime.cgroupsEnforced) return undefined;
    const parent = new Cgroup(path.join(this.cgroupRoot, PARENT_NAME));
    return { pressure: parent.pressure('memory'), memoryBytes: parent.number('memory.current') ?? 0, memoryMax: parent.number('memory.max') ?? Infinity };
  }

  subscribe(listener: (e: ContainerEvent) => void): () => void {
    return this.watch.subscribe(listener);
  }

  private running(nameOrId: string): ContainerRecord {
    const c = this.find(nameOrId);
    if (c.state !== 'running') throw new BerthError('conflict', `container ${c.name} is not running`);
    return c;
  }

  private async signal(id: string, signal: string): Promise<void> {
    try {
      await runtimeCall(this.runtimeOf(this.records.get(id)!), ['kill', id, signal.replace(/^SIG/, '')]);
    } catch (err) {
      // It may have exited between the check and the signal; that is not an error.
      if (this.refresh(this.records.get(id)!).state === 'running') throw err;
    }
  }

  /** Brings the record up to date with the monitor's files (run-state.ts); `persist`: also in the database. */
  private refresh(c: ContainerRecord, persist = true): ContainerRecord {
    const seen = observeRun(c, this.stateDir(c.id));
    if (!seen) return c;
    if (!persist) return withRun(c, seen);
    if (seen.kind === 'started') this.records.markStarted(c.id, seen.startedAt);
    else this.records.markExited(c.id, seen);
    return this.records.get(c.id)!;
  }
}
