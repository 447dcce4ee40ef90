import crypto from 'node:crypto';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { detectBoard, type BoardInfo } from '../../src/board/index.js';
import { Cgroup } from '../../src/cgroup/v2.js';
import { BerthError } from '../../src/errors.js';
import type {
  ContainerEngine, ContainerEvent, ContainerStats, ExecResult, LifecycleOptions, ParentMemory, RuntimeInfo, StartOptions, StatsOptions,
} from '../../src/runtime/engine-api.js';
import type { NetworkReconcileReport } from '../../src/network/container.js';
import { inspectContainer } from '../../src/runtime/inspect.js';
import { validateRunOptions, type RunOptions } from '../../src/runtime/options.js';
import { CgroupStatsReader } from '../../src/runtime/stats.js';
import type { ContainerRecord } from '../../src/runtime/records.js';
import type { ExecProcess, ExecSpec } from '../../src/runtime/exec.js';
import type { ContainerRoot } from '../../src/runtime/cp/stopped-root.js';
import { planUpdate, type ContainerUpdate } from '../../src/runtime/update.js';
import { validateContainerName } from '../../src/runtime/options.js';
import { execInDouble } from './engine-double-exec.js';
import { fixtureHost } from './host-tree.js';

export interface EngineDoubleOptions {
  /** A directory the test made and removes: the double's cgroup tree and its containers' log directories live there. */
  readonly dir: string;
  /** Images `create` accepts (by exact reference); any other is `notFound`, as in the real engine. */
  readonly images?: readonly string[];
  /** false: a runtime without cgroup limits (freeze/thaw are `host` errors, no parent cgroup). Default true. */
  readonly cgroupsEnforced?: boolean;
  readonly board?: BoardInfo;
}

/** What a container's init does, from its command line (see the class comment). */
interface Program {
  /** Exits by itself with this code right after it starts. */
  readonly exitsWith?: number;
  /** Exit codes on the signals it traps; PID 1 ignores every other signal but SIGKILL. */
  readonly traps: ReadonlyMap<string, number>;
}

/**
 * An in-memory ContainerEngine for unit tests, held to the real engine's contract by the conformance
 * suite (test/helpers/conformance/engine.ts), which runs against both.
 *
 * Its process model is a small interpreter of the commands the tests use, with the semantics they
 * have in a real busybox container: `sh -c SCRIPT` where SCRIPT's statements are `exit N` (the init
 * exits with N at once), `trap 'exit N' SIG…` (the init exits with N on that signal), and anything else
 * (`sleep 600 & wait`, a bare `sleep 600`), which runs until a signal ends it. Like any PID 1, the init
 * ignores signals it does not trap, except SIGKILL (exit 137). `exec` runs the same interpreter: `exit N`
 * gives N, `echo TEXT` gives TEXT and a newline as output. Kernel OOM kills are what a test cannot
 * provoke in memory: `oomKill(id)` ends the run as the kernel would (137, oomKilled).
 *
 * Each container has a cgroup v2 directory under `<dir>/cgroup/berth/<id>` with the files a running
 * container's cgroup has (written on start; tests may overwrite them, `cgroupDir` says where), read by
 * the engine's own CgroupStatsReader, and a log directory under `<dir>/containers/<id>`.
 */
export class EngineDouble implements ContainerEngine {
  readonly runtime: RuntimeInfo;
  private readonly containers = new Map<string, ContainerRecord>();
  private readonly networks = new Map<string, Set<string>>();
  private readonly listeners = new Set<(e: ContainerEvent) => void>();
  private readonly statsReader = new CgroupStatsReader();
  private readonly board: BoardInfo;
  private readonly cgroupRoot: string;

  constructor(private readonly o: EngineDoubleOptions) {
    const enforced = o.cgroupsEnforced ?? true;
    this.runtime = { name: 'double', cgroupsEnforced: enforced, limitsNote: enforced ? 'limits enforced (cgroup v2, in memory)' : 'limits not enforced: this double has no cgroups' };
    this.board = o.board ?? detectBoard(fixtureHost('rpi-zero-2-w'));
    this.cgroupRoot = path.join(o.dir, 'cgroup');
  }

  /** Where the double keeps a container's cgroup v2 files (tests write usage numbers there). */
  cgroupDir(id: string): string {
    return path.join(this.cgroupRoot, 'berth', id);
  }

  create(imageRef: string, options: RunOptions, _lifecycle?: LifecycleOptions): ContainerRecord {
    validateRunOptions(options);
    if ([...this.containers.values()].some((c) => c.name === options.name)) throw new BerthError('conflict', `the name "${options.name}" is already in use`);
    if (this.o.images !== undefined && !this.o.images.includes(imageRef)) throw new BerthError('notFound', `no such image: ${imageRef}`);
    const id = crypto.randomBytes(32).toString('hex');
    fs.mkdirSync(this.logDirOf(id), { recursive: true });
    const c: ContainerRecord = {
      id, name: options.name, image: imageRef, imageDigest: `sha256:${crypto.createHash('sha256').update(imageRef).digest('hex')}`, options, runtime: this.runtime.name,
      createdAt: Date.now(), state: 'created', oomKilled: false, restartCount: 0, stoppedByUser: false,
    };
    this.containers.set(id, c);
    this.emit({ type: 'create', id, name: c.name, at: Date.now() });
    return c;
  }

  async start(nameOrId: string, opts: StartOptions = {}): Promise<ContainerRecord> {
    const c = this.find(nameOrId);
    if (c.state === 'running') return c;
    const restartCount = c.restartCount + (opts.countRestart ? 1 : 0);
    const dir = this.cgroupDir(c.id);
    fs.rmSync(dir, { recursive: true, force: true });
    if (this.runtime.cgroupsEnforced) {
      fs.mkdirSync(dir, { recursive: true });
      const files = {
        'cgroup.procs': '1\n', 'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n', 'memory.current': '1048576\n', 'memory.peak': '1048576\n',
        'memory.max': c.options.memory === undefined ? 'max\n' : `${c.options.memory}\n`, 'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n',
        'pids.current': '1\n', 'cgroup.events': 'populated 1\nfrozen 0\n', 'cgroup.freeze': '0\n',
      };
      for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
    }
    const { exitCode: _e, finishedAt: _f, ...rest } = c;
    const started = this.set({ ...rest, state: 'running', startedAt: Date.now(), oomKilled: false, stoppedByUser: false, restartCount });
    this.emit({ type: 'start', id: c.id, name: c.name, at: Date.now(), startedAt: started.startedAt!, restartCount });
    const program = programOf([...(c.options.entrypoint ?? []), ...(c.options.cmd ?? [])]);
    if (program.exitsWith !== undefined) {
      const code = program.exitsWith;
      // After the start resolved, as a real init exits after `runtime run` returned.
      setImmediate(() => {
        if (this.containers.get(c.id)?.startedAt === started.startedAt) this.exit(c.id, code, false);
      });
    }
    return started;
  }

  async stop(nameOrId: string, timeoutS?: number): Promise<ContainerRecord> {
    const c = this.find(nameOrId);
    if (c.state !== 'running') return c;
    this.set({ ...c, stoppedByUser: true });
    this.deliver(c.id, c.options.stopSignal ?? 'SIGTERM');
    if (!(await this.waitExit(c.id, (timeoutS ?? c.options.stopTimeout ?? 10) * 1000))) this.deliver(c.id, 'SIGKILL');
    return this.find(c.id);
  }

  async kill(nameOrId: string, signal = 'SIGKILL'): Promise<ContainerRecord> {
    const c = this.running(nameOrId);
    this.set({ ...c, stoppedByUser: true });
    this.deliver(c.id, signal);
    return this.find(c.id);
  }

  async remove(nameOrId: string, force = false): Promise<ContainerRecord> {
    const c = this.find(nameOrId);
    if (c.state === 'running') {
      if (!force) throw new BerthError('conflict', `container ${c.name} is running`);
      this.deliver(c.id, 'SIGKILL');
    }
    const last = this.find(c.id);
    this.containers.delete(c.id);
    fs.rmSync(this.cgroupDir(c.id), { recursive: true, force: true });
    fs.rmSync(path.dirname(this.logDirOf(c.id)), { recursive: true, force: true });
    this.statsReader.forget(c.id);
    this.emit({ type: 'remove', id: c.id, name: c.name, at: Date.now() });
    return last;
  }

  list(): ContainerRecord[] {
    return [...this.containers.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  find(nameOrId: string): ContainerRecord {
    const byId = this.containers.get(nameOrId);
    if (byId) return byId;
    const all = [...this.containers.values()];
    const byName = all.find((c) => c.name === nameOrId);
    if (byName) return byName;
    if (/^[a-f0-9]{3,64}$/.test(nameOrId)) {
      const matches = all.filter((c) => c.id.startsWith(nameOrId));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw new BerthError('conflict', `"${nameOrId}" matches several containers; use more of the id`);
    }
    throw new BerthError('notFound', `no such container: ${nameOrId}`);
  }

  peek(nameOrId: string): ContainerRecord {
    return this.find(nameOrId);
  }

  inspect(nameOrId: string): Record<string, unknown> {
    const c = this.find(nameOrId);
    // The double has no networks: a container is attached to none.
    return inspectContainer(c, { board: this.board, runtime: this.runtime, stateDir: this.logDirOf(c.id), pid: this.pid(c.id), paused: this.frozen(c), attachments: [] });
  }

  /** The double has no v1 hierarchy: `v2Only` changes nothing. */
  stats(container: string | ContainerRecord, _opts?: StatsOptions): ContainerStats {
    const c = typeof container === 'string' ? this.find(container) : container;
    return this.statsReader.read(c, this.cgroupDir(c.id));
  }

  /** A stand-in pid: the double runs no process, so no real process may be named. */
  pid(nameOrId: string): number | undefined {
    return this.find(nameOrId).state === 'running' ? 1 : undefined;
  }

  async exec(nameOrId: string, argv: readonly string[], _timeoutMs: number): Promise<ExecResult> {
    this.running(nameOrId);
    const script = isShell(argv) ? argv[2] ?? '' : argv.join(' ');
    let output = '';
    for (const st of statements(script)) {
      const exit = /^exit\s+(\d+)$/.exec(st);
      if (exit) return { exitCode: Number(exit[1]), output };
      const echo = /^echo\s+(.*)$/.exec(st);
      if (echo) output += `${echo[1]!.replace(/^(['"])(.*)\1$/, '$2')}\n`;
    }
    return { exitCode: 0, output };
  }

  execProcess(nameOrId: string, spec: ExecSpec): ExecProcess {
    const c = this.running(nameOrId);
    return execInDouble(c.options.env, spec, statements);
  }

  /** The stand-in init pid, as `pid` gives it. */
  processes(nameOrId: string): number[] {
    this.running(nameOrId);
    return [1];
  }

  /** A directory per container under the double's own: what a test puts there is the container's files. */
  rootPath(nameOrId: string): string {
    return this.rootDir(this.running(nameOrId).id);
  }

  private rootDir(id: string): string {
    const dir = path.join(this.o.dir, 'containers', id, 'rootfs');
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** The double's containers keep their files in one directory, running or not. */
  openRoot(nameOrId: string): ContainerRoot {
    return { path: this.rootDir(this.find(nameOrId).id), close: () => undefined };
  }

  rename(nameOrId: string, newName: string): ContainerRecord {
    const c = this.find(nameOrId);
    validateContainerName(newName);
    if ([...this.containers.values()].some((o) => o.name === newName)) throw new BerthError('conflict', `the name "${newName}" is already in use`);
    if (c.name === newName) throw new BerthError('invalid', `container ${c.name} is already named ${newName}`);
    const renamed = this.set({ ...c, name: newName, options: { ...c.options, name: newName } });
    this.emit({ type: 'rename', id: c.id, name: newName, oldName: c.name, at: Date.now() });
    return renamed;
  }

  update(nameOrId: string, update: ContainerUpdate): ContainerRecord {
    const c = this.find(nameOrId);
    const plan = planUpdate(c.options, update, this.board.containerDefaults);
    const dir = this.cgroupDir(c.id);
    if (c.state === 'running' && this.runtime.cgroupsEnforced) for (const [f, v] of plan.files) fs.writeFileSync(path.join(dir, f), `${v}\n`);
    const updated = this.set({ ...c, options: plan.options });
    this.emit({ type: 'update', id: c.id, name: c.name, at: Date.now() });
    return updated;
  }

  freeze(nameOrId: string): void {
    this.setFrozen(nameOrId, true);
  }

  /** Networks are only names here: the double keeps which container is on which, with the engine's refusals. */
  async connectNetwork(nameOrId: string, network: string): Promise<void> {
    const { id, name } = this.find(nameOrId);
    const nets = this.networks.get(id) ?? new Set<string>();
    if (nets.has(network)) throw new BerthError('conflict', `container ${name} is already connected to network ${network}`);
    nets.add(network);
    this.networks.set(id, nets);
  }

  /** The double's only networking state is its connections: those of containers no longer here are dropped. */
  async reconcileNetworking(): Promise<NetworkReconcileReport> {
    const released = [...this.networks.keys()].filter((id) => !this.containers.has(id));
    for (const id of released) this.networks.delete(id);
    return { tornDown: [], released, dnsStopped: [], problems: [] };
  }

  async disconnectNetwork(nameOrId: string, network: string): Promise<void> {
    const { id, name } = this.find(nameOrId);
    if (!this.networks.get(id)?.delete(network)) throw new BerthError('conflict', `container ${name} is not connected to network ${network}`);
  }

  thaw(nameOrId: string): void {
    this.setFrozen(nameOrId, false);
  }

  async waitExit(nameOrId: string, timeoutMs: number, signal?: AbortSignal): Promise<ContainerRecord | undefined> {
    const { id } = this.find(nameOrId);
    const ended = (): ContainerRecord | undefined => {
      const c = this.containers.get(id);
      return c && c.state !== 'running' ? c : undefined;
    };
    if (ended()) return ended();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener('abort', done);
        resolve(ended());
      };
      const timer = setTimeout(done, timeoutMs);
      const unsubscribe = this.subscribe((e) => e.id === id && (e.type === 'exit' || e.type === 'remove') && done());
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  logDir(nameOrId: string): string {
    return this.logDirOf(this.find(nameOrId).id);
  }

  ensureParentCgroup(): Record<string, string> | undefined {
    if (!this.runtime.cgroupsEnforced) return undefined;
    const parent = path.join(this.cgroupRoot, 'berth');
    fs.mkdirSync(parent, { recursive: true });
    const applied = { 'memory.max': String(this.board.containerBudgetBytes) };
    fs.writeFileSync(path.join(parent, 'memory.max'), `${applied['memory.max']}\n`);
    return applied;
  }

  parentMemory(): ParentMemory | undefined {
    if (!this.runtime.cgroupsEnforced) return undefined;
    const parent = new Cgroup(path.join(this.cgroupRoot, 'berth'));
    return { pressure: parent.pressure('memory'), memoryBytes: parent.number('memory.current') ?? 0, memoryMax: parent.number('memory.max') ?? Infinity };
  }

  subscribe(listener: (e: ContainerEvent) => void): () => void {
    const wrapped = (e: ContainerEvent): void => listener(e);
    this.listeners.add(wrapped);
    return () => void this.listeners.delete(wrapped);
  }

  /** Ends a running container's run as a kernel OOM kill of its init would (not in the interface: tests only). */
  oomKill(nameOrId: string): void {
    const c = this.running(nameOrId);
    const events = path.join(this.cgroupDir(c.id), 'memory.events');
    if (fs.existsSync(events)) fs.writeFileSync(events, 'low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n');
    this.exit(c.id, 137, true);
  }

  private deliver(id: string, signal: string): void {
    const c = this.containers.get(id)!;
    if (c.state !== 'running') return;
    const program = programOf([...(c.options.entrypoint ?? []), ...(c.options.cmd ?? [])]);
    const name = signal.startsWith('SIG') ? signal : `SIG${signal}`;
    if (name === 'SIGKILL') this.exit(id, 128 + osConstants.signals.SIGKILL, false);
    else if (program.traps.has(name)) this.exit(id, program.traps.get(name)!, false);
  }

  private exit(id: string, exitCode: number, oomKilled: boolean): void {
    const c = this.containers.get(id);
    if (!c || c.state !== 'running') return;
    fs.rmSync(path.join(this.cgroupDir(id), 'cgroup.procs'), { force: true });
    const ended = this.set({ ...c, state: 'exited', exitCode, oomKilled, finishedAt: Date.now() });
    const base = { id, name: c.name, at: Date.now() };
    if (oomKilled) this.emit({ ...base, type: 'oom' });
    this.emit({ ...base, type: 'exit', exitCode, oomKilled, state: ended.state as 'exited' });
  }

  private setFrozen(nameOrId: string, frozen: boolean): void {
    const c = this.running(nameOrId);
    if (!this.runtime.cgroupsEnforced) throw new BerthError('host', `cannot ${frozen ? 'freeze' : 'thaw'} ${c.name}: ${this.runtime.limitsNote}`);
    if (this.frozen(c) === frozen) return;
    const cg = new Cgroup(this.cgroupDir(c.id));
    cg.write('cgroup.freeze', frozen ? '1' : '0');
    cg.write('cgroup.events', `populated 1\nfrozen ${frozen ? 1 : 0}\n`);
    this.emit({ type: frozen ? 'freeze' : 'thaw', id: c.id, name: c.name, at: Date.now() });
  }

  private frozen(c: ContainerRecord): boolean {
    return c.state === 'running' && this.runtime.cgroupsEnforced && new Cgroup(this.cgroupDir(c.id)).frozen();
  }

  private running(nameOrId: string): ContainerRecord {
    const c = this.find(nameOrId);
    if (c.state !== 'running') throw new BerthError('conflict', `container ${c.name} is not running`);
    return c;
  }

  private set(c: ContainerRecord): ContainerRecord {
    this.containers.set(c.id, c);
    return c;
  }

  private logDirOf(id: string): string {
    return path.join(this.o.dir, 'containers', id, 'state');
  }

  private emit(e: ContainerEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // As in the real engine: one listener's failure does not stop the others.
      }
    }
  }
}

/** `sh -c SCRIPT` or `/bin/sh -c SCRIPT` (a CMD-SHELL healthcheck). */
const isShell = (argv: readonly string[]): boolean => (argv[0] === 'sh' || argv[0] === '/bin/sh') && argv[1] === '-c';

/** `sh -c SCRIPT`'s statements, split at `;`, `&` and newlines (quotes and `>&` redirections are not split). */
function statements(script: string): string[] {
  return (script.match(/(?:'[^']*'|"[^"]*"|>&|[^;&\n])+/g) ?? []).map((s) => s.trim()).filter(Boolean);
}

function programOf(argv: readonly string[]): Program {
  const traps = new Map<string, number>();
  if (!isShell(argv)) return { traps };
  for (const st of statements(argv[2] ?? '')) {
    const exit = /^exit\s+(\d+)$/.exec(st);
    if (exit) return { exitsWith: Number(exit[1]), traps };
    const trap = /^trap\s+(['"])exit\s+(\d+)\1\s+(.+)$/.exec(st);
    if (trap) for (const sig of trap[3]!.split(/\s+/)) traps.set(sig.startsWith('SIG') ? sig : `SIG${sig}`, Number(trap[2]));
  }
  return { traps };
}
