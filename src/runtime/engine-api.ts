import type { Pressure } from '../cgroup/v2.js';
import type { ContainerRecord } from './records.js';
import type { RunOptions } from './options.js';
import type { NetworkReconcileReport } from '../network/container.js';
import type { ExecProcess, ExecSpec } from './exec.js';
import type { ContainerUpdate } from './update.js';
import type { ContainerRoot } from './cp/stopped-root.js';

/**
 * The container engine as the rest of berth sees it: the agent, its supervisor, governor, health
 * monitor, telemetry and commands, and the CLI depend on this interface only. `LocalEngine`
 * (engine.ts) implements it over crun/runc and berth-monitor; the test doubles in test/helpers/
 * implement it in memory, and one conformance suite (test/helpers/conformance/engine.ts) runs the same
 * cases against both, so a double cannot drift from the engine.
 *
 * Contract common to every method:
 * - `nameOrId` is a container name, a full id, or an id prefix of at least 3 hex digits matching exactly
 *   one container. No match: BerthError `notFound`; several: `conflict`.
 * - A returned `ContainerRecord` is a snapshot as of the call, brought up to date with how the current
 *   run ended when it has (the monitor's exit record is the truth about what runs).
 * - State transitions: created → running (start) → exited (the process ended: its exit code) or dead
 *   (its monitor ended without recording an exit: exit code 255); exited/dead → running (start again).
 */
export interface ContainerEngine {
  /** The OCI runtime new containers get, and whether it enforces cgroup limits on this host. */
  readonly runtime: RuntimeInfo;

  /**
   * Creates a container from a pulled image without starting it. Options are validated first
   * (BerthError `invalid` naming the option); the name must be unused (`conflict`); the image must be
   * present (`notFound`). Emits `create`.
   */
  create(imageRef: string, options: RunOptions, lifecycle?: LifecycleOptions): ContainerRecord;
  /**
   * Starts a created or ended container under a new monitor and resolves once it runs (the record's
   * `startedAt` is the new run's); a running container is returned as it is. Clears `stoppedByUser`
   * and the previous run's exit. Emits `start`. `conflict` while a `berth cp` has its stopped root open
   * (openRoot, in any process).
   */
  start(nameOrId: string, opts?: StartOptions): Promise<ContainerRecord>;
  /**
   * docker stop: marks the container stopped by the user, sends its stop signal (default SIGTERM),
   * waits up to `timeoutS` (default: its stopTimeout, else 10 s), then SIGKILL. Resolves with the ended
   * record; a container that is not running is returned as it is. Its `exit` event follows.
   */
  stop(nameOrId: string, timeoutS?: number): Promise<ContainerRecord>;
  /**
   * Sends `signal` (default SIGKILL) to a running container and marks it stopped by the user; does not
   * wait for the exit (its `exit` event says when). Not running: BerthError `conflict`.
   */
  kill(nameOrId: string, signal?: string): Promise<ContainerRecord>;
  /** Removes a container and its files; a running one only with `force` (killed first), else `conflict`. Emits `remove`. */
  remove(nameOrId: string, force?: boolean): Promise<ContainerRecord>;
  /** Every container, oldest first. */
  list(): ContainerRecord[];
  /** One container (see the lookup rules above). */
  find(nameOrId: string): ContainerRecord;
  /**
   * `find` for a caller that removes the container right after its exit (`run --rm`): the exit is
   * applied to the returned record but need not be committed first.
   */
  peek(nameOrId: string): ContainerRecord;
  /** docker-inspect-shaped view: state (with `paused` for a frozen container), limits, where its log is. */
  inspect(nameOrId: string): Record<string, unknown>;
  /**
   * Usage from the container's cgroup; `measured: false` with a note when there is nothing to read.
   * Given a record (from `list` or `find`) instead of a name or id, reads that container as the record
   * has it, without looking it up again: for a caller sampling many at a time (telemetry), where a
   * container that ended meanwhile just has no cgroup left to read. `v2Only`: the cgroup v2 files
   * alone, no v1 fallback on a hybrid host (telemetry reports v2 accounting).
   */
  stats(container: string | ContainerRecord, opts?: StatsOptions): ContainerStats;
  /** The pid of a running container's init, as the runtime recorded it; undefined when not running. */
  pid(nameOrId: string): number | undefined;
  /**
   * Runs `argv` inside a running container (docker exec, no terminal), killed after `timeoutMs`.
   * Resolves with its exit code and combined output; not running: BerthError `conflict`.
   */
  exec(nameOrId: string, argv: readonly string[], timeoutMs: number): Promise<ExecResult>;
  /**
   * docker exec without a terminal: starts `spec.argv` in a running container with the container's own
   * user, environment, working directory, capabilities and limits, overridden by the spec's fields, and
   * returns at once (see ExecProcess for streams and exit codes: 126 not executable, 127 not found).
   * Not running: `conflict`; an unknown `-u` user: `invalid`; `tty`: `usage` (a terminal exec is
   * LocalEngine's `execTerminal`, runtime/terminal.ts).
   */
  execProcess(nameOrId: string, spec: ExecSpec): ExecProcess;
  /**
   * docker top: the host pids of a running container's processes (its cgroup's, exec'd ones included),
   * ascending. Not running: `conflict`.
   */
  processes(nameOrId: string): number[];
  /**
   * The root filesystem of a running container as the host sees it, with its mounts (volumes, binds):
   * for `cp`, which must resolve every path inside it. Not running: `conflict`.
   */
  rootPath(nameOrId: string): string;
  /**
   * docker cp's view of any container, running or not: a running one's `rootPath`; a created or exited
   * one's root mounted with its volumes and binds (read-only ones kept so) until `close`, which the
   * caller must call. Meanwhile a `start` of it is refused (`conflict`): both would use its writable layer.
   */
  openRoot(nameOrId: string): ContainerRoot;
  /**
   * docker rename: a new, unused and valid name (`invalid`, `conflict` naming it); the id, networks'
   * addresses and everything else stay. Emits `rename` (with the old name).
   */
  rename(nameOrId: string, newName: string): ContainerRecord;
  /**
   * docker update: new limits and restart policy. Checked like `create` (`invalid` naming the flag);
   * kept in the record and the container's spec for its next start, and written into a running
   * container's cgroup at once where the runtime enforces cgroups. Emits `update`.
   */
  update(nameOrId: string, update: ContainerUpdate): ContainerRecord;
  /**
   * Freezes (cgroup v2 freezer) or thaws a running container. Not running: `conflict`; a runtime that
   * does not enforce cgroups: `host`. A frozen container stays `running` (inspect: paused);
   * SIGKILL still reaches it. Emits `freeze` / `thaw` when the state changed.
   */
  freeze(nameOrId: string): void;
  thaw(nameOrId: string): void;
  /**
   * docker network connect / disconnect: a container whose networking is up is attached or detached at
   * once; one never started gets the change recorded for its next start. Connecting to a network it is
   * already on, or disconnecting one it is not on: `conflict`; an unknown network: `notFound`.
   * `force` (disconnect): forget the connection even if its teardown fails.
   */
  connectNetwork(nameOrId: string, network: string, opts?: { readonly aliases?: readonly string[]; readonly ip?: string }): Promise<void>;
  disconnectNetwork(nameOrId: string, network: string, force?: boolean): Promise<void>;
  /**
   * Reconciles the host's networking with the store (agent start, network prune): what containers that
   * no longer exist left behind (after a kill -9 mid-remove, or a reboot) is removed — veths, firewall
   * and port rules, DNS names, bridges, leases; an existing container's networking is never touched.
   */
  reconcileNetworking(): Promise<NetworkReconcileReport>;
  /**
   * Waits for the container's current run to end; resolves with the ended record, or undefined after
   * `timeoutMs` or when `signal` aborts. Wakes on the monitor's exit record (inotify), not by polling.
   */
  waitExit(nameOrId: string, timeoutMs: number, signal?: AbortSignal): Promise<ContainerRecord | undefined>;
  /** Where the container's CRI log files are (`container.log` and its rotations; runtime/logs.ts reads them). */
  logDir(nameOrId: string): string;

  /**
   * Sets up the parent cgroup of all containers with the board's container budget (memory.max) and
   * returns the files it wrote; undefined when the runtime does not enforce cgroups. Idempotent.
   */
  ensureParentCgroup(): Record<string, string> | undefined;
  /** Memory pressure and usage of that parent cgroup, for the pressure governor; undefined without one. */
  parentMemory(): ParentMemory | undefined;

  /**
   * Subscribes to container events; returns the unsubscribe function (idempotent). See
   * `ContainerEvent` for what is delivered, in which order, and what a listener may do.
   */
  subscribe(listener: (e: ContainerEvent) => void): () => void;
}

/** How a container is used, when that lets the engine skip work. */
export interface LifecycleOptions {
  /**
   * The caller removes the container as soon as it exits (`run --rm`): its spec and exit record are
   * written atomically but not fsynced. A power cut can then leave them empty, in a container that
   * was to be removed anyway (`berth rm` still works); kill -9 cannot, the rename being atomic.
   */
  readonly autoRemove?: boolean;
}

export interface StartOptions extends LifecycleOptions {
  /** A restart by the restart policy (the supervisor, the governor): counted in `restartCount`, even if the start fails. */
  readonly countRestart?: boolean;
  /** A container with a terminal starts with this size (the attaching CLI's), set before its process runs. */
  readonly consoleSize?: { readonly rows: number; readonly cols: number };
}

export interface StatsOptions {
  readonly v2Only?: boolean;
}

export interface RuntimeInfo {
  readonly name: string;
  readonly cgroupsEnforced: boolean;
  /** One line on what limits mean on this host, for `berth info`, inspect and logs. */
  readonly limitsNote: string;
}

export interface ExecResult {
  readonly exitCode: number;
  readonly output: string;
}

export interface ParentMemory {
  readonly pressure: Pressure | undefined;
  readonly memoryBytes: number;
  readonly memoryMax: number;
}

/**
 * Usage of one container. A field whose file is missing is absent on its own (memory.peak before Linux
 * 5.19; memory and pids on a hybrid host, whose unified-hierarchy cgroup has only cpu.stat).
 */
export interface ContainerStats {
  readonly name: string;
  readonly id: string;
  readonly measured: boolean;
  /** Where the numbers come from: the cgroup v2 files, or v1 files where runc placed it on a hybrid host. */
  readonly source?: 'v2' | 'v1';
  readonly note?: string;
  readonly cpuUsageUsec?: number;
  readonly memoryCurrent?: number;
  readonly memoryPeak?: number;
  readonly memoryLimit?: number | 'max';
  /** memory.events oom_kill: tasks the kernel OOM-killed in this cgroup during this run. */
  readonly oomKills?: number;
  readonly pids?: number;
  /** Frozen by the cgroup freezer (docker's paused). */
  readonly frozen?: boolean;
}

/**
 * What happened to a container, as observed by the engine. Sources: the engine's own actions, and the
 * monitors' files (`exit` appears, `monitor.pid` is replaced on a start) and the state database as other
 * processes change them (another `berth` command), seen through inotify; a slow safety sweep (seconds)
 * catches what inotify cannot report: a monitor that died without writing its exit record.
 *
 * - `create`, `start` (a new run: `startedAt`, `restartCount`), `exit` (the run ended: `exitCode`,
 *   `oomKilled`, `state` exited or dead), `oom` (the run ended by a kernel OOM kill; comes right before
 *   its `exit`), `freeze`/`thaw` (this engine's own freezer calls), `rename`, `update`, `remove`.
 * - Order: per container, in the order the transitions happened (create < start < oom < exit < remove;
 *   a run that started and ended between two observations still gives `start` then `exit`). Across
 *   containers, in the order they were observed. `rename` is also seen when another process renames;
 *   `update` only for this engine's own calls.
 * - Delivery: to every listener subscribed at the time, synchronously, in subscription order, at most
 *   once per transition. Listeners must return quickly and do their work asynchronously; one that
 *   throws does not stop delivery to the others. There is no replay: a new subscriber reads the
 *   present with `list()` after subscribing.
 * - Closing: the unsubscribe function; the engine stops watching once no listener is left.
 */
export type ContainerEvent =
  | (EventBase & { readonly type: 'create' })
  | (EventBase & { readonly type: 'start'; readonly startedAt: number; readonly restartCount: number })
  | (EventBase & { readonly type: 'exit'; readonly exitCode: number; readonly oomKilled: boolean; readonly state: 'exited' | 'dead' })
  | (EventBase & { readonly type: 'rename'; readonly oldName: string })
  | (EventBase & { readonly type: 'oom' | 'freeze' | 'thaw' | 'update' | 'remove' });

export interface EventBase {
  readonly id: string;
  readonly name: string;
  /** When the engine observed it (ms since the epoch). */
  readonly at: number;
}

export type ContainerEventType = ContainerEvent['type'];
