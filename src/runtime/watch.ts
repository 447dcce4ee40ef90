import fs from 'node:fs';
import path from 'node:path';
import type { ContainerRecord } from './records.js';
import type { ContainerEvent } from './engine-api.js';

/** What the watch remembers of a container between two looks: enough to name every transition. */
interface Seen {
  readonly name: string;
  readonly state: ContainerRecord['state'];
  readonly startedAt: number | undefined;
}

export interface ContainerWatchSources {
  /** `<root>/containers`: one directory per container appears and disappears here. */
  readonly containersDir: string;
  /** A container's state directory, where its monitor writes `monitor.pid` and `exit`. */
  readonly stateDir: (id: string) => string;
  /** The state database's WAL file: every commit, by any process, writes to it. */
  readonly walFile: string;
  /** The containers, refreshed from the monitors' files (an ended run is committed on the way). */
  readonly list: () => ContainerRecord[];
  /** The longest a change nothing reports (a monitor killed before its exit record) goes unseen. */
  readonly sweepMs: number;
}

/** Files of a state directory whose change means a run started or ended (the log changes far more often). */
const RUN_FILES = new Set(['exit', 'monitor.pid']);

/**
 * The engine's event source (see ContainerEvent in engine-api.ts for the contract). Events are the
 * differences between two looks at the containers, so each transition is reported once whoever caused
 * it: this process (the engine calls `look()` after each action), a monitor (its `exit` or
 * `monitor.pid` appears: inotify on each state directory), or another berth process (its commit
 * touches the WAL file; its new container directory appears). A look costs one query and the monitor
 * files of the running containers; looks requested together (a burst of inotify events) run once.
 * Watching starts with the first listener and stops with the last.
 */
export class ContainerWatch {
  private readonly listeners = new Set<(e: ContainerEvent) => void>();
  private seen = new Map<string, Seen>();
  private readonly stateWatches = new Map<string, fs.FSWatcher>();
  private readonly rootWatches: fs.FSWatcher[] = [];
  private sweep: NodeJS.Timeout | undefined;
  private lookQueued = false;

  constructor(private readonly src: ContainerWatchSources) {}

  subscribe(listener: (e: ContainerEvent) => void): () => void {
    // Each subscription is its own entry, even for the same function twice.
    const wrapped = (e: ContainerEvent): void => listener(e);
    this.listeners.add(wrapped);
    if (this.listeners.size === 1) this.start();
    return () => {
      if (!this.listeners.delete(wrapped)) return;
      if (this.listeners.size === 0) this.stop();
    };
  }

  get active(): boolean {
    return this.listeners.size > 0;
  }

  /** Compares the containers with the last look and emits the differences; a no-op while nobody listens. */
  look(): void {
    if (!this.active) return;
    const now = Date.now();
    const current = new Map<string, Seen>();
    for (const c of this.src.list()) {
      current.set(c.id, { name: c.name, state: c.state, startedAt: c.startedAt });
      const before = this.seen.get(c.id);
      const base = { id: c.id, name: c.name, at: now };
      if (!before) {
        this.watchState(c.id);
        this.emit({ ...base, type: 'create' });
      } else if (before.name !== c.name) this.emit({ ...base, type: 'rename', oldName: before.name });
      const newRun = c.startedAt !== undefined && c.startedAt !== before?.startedAt;
      if (newRun) this.emit({ ...base, type: 'start', startedAt: c.startedAt, restartCount: c.restartCount });
      const ended = c.state === 'exited' || c.state === 'dead';
      if (ended && (newRun || before?.state === 'running')) {
        if (c.oomKilled) this.emit({ ...base, type: 'oom' });
        this.emit({ ...base, type: 'exit', exitCode: c.exitCode ?? 255, oomKilled: c.oomKilled, state: c.state as 'exited' | 'dead' });
      }
    }
    for (const [id, before] of this.seen) {
      if (current.has(id)) continue;
      this.unwatchState(id);
      this.emit({ id, name: before.name, at: now, type: 'remove' });
    }
    this.seen = current;
  }

  /** For events only the engine itself knows of (freeze, thaw). */
  emit(e: ContainerEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // A listener's failure is its own: the others still hear of the event.
      }
    }
  }

  private start(): void {
    // The present is not news: the first look only records it.
    this.seen = new Map(this.src.list().map((c) => [c.id, { name: c.name, state: c.state, startedAt: c.startedAt }]));
    for (const id of this.seen.keys()) this.watchState(id);
    this.watchDir(this.src.containersDir, () => true);
    const wal = path.basename(this.src.walFile);
    this.watchDir(path.dirname(this.src.walFile), (f) => f === wal);
    this.sweep = setInterval(() => this.lookFromTimer(), this.src.sweepMs);
    this.sweep.unref();
  }

  private stop(): void {
    clearInterval(this.sweep);
    for (const w of this.rootWatches.splice(0)) w.close();
    for (const id of [...this.stateWatches.keys()]) this.unwatchState(id);
    this.seen = new Map();
  }

  /** A look soon (after the current burst of inotify events): many events, one look. */
  private queueLook(): void {
    if (this.lookQueued) return;
    this.lookQueued = true;
    setImmediate(() => {
      this.lookQueued = false;
      this.lookFromTimer();
    });
  }

  /**
   * A look nobody called, so nobody to hand its error to. Thrown from a timer it would end the process:
   * seen when the agent's store was closed at shutdown while a look queued by inotify was pending. The
   * error is dropped here only; any caller's own read (and so the next called look) meets it.
   */
  private lookFromTimer(): void {
    try {
      this.look();
    } catch {
      // See above.
    }
  }

  private watchDir(dir: string, relevant: (file: string) => boolean): void {
    try {
      const w = fs.watch(dir, { persistent: false }, (_, f) => {
        if (f === null || relevant(f)) this.queueLook();
      });
      w.on('error', () => w.close());
      this.rootWatches.push(w);
    } catch {
      // No inotify here (or no such directory yet): the sweep carries on alone.
    }
  }

  private watchState(id: string): void {
    if (this.stateWatches.has(id)) return;
    try {
      const w = fs.watch(this.src.stateDir(id), { persistent: false }, (_, f) => {
        if (f === null || RUN_FILES.has(f)) this.queueLook();
      });
      // The directory went away with its container: the look that sees the removal closes the watch.
      w.on('error', () => w.close());
      this.stateWatches.set(id, w);
    } catch {
      // Removed between the query and the watch: the next look reports the removal.
    }
  }

  private unwatchState(id: string): void {
    this.stateWatches.get(id)?.close();
    this.stateWatches.delete(id);
  }
}
