import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { priorityOf } from '../../cgroup/priority.js';
import { parsePressure } from '../../cgroup/v2.js';
import { toBerthError } from '../../errors.js';
import type { ContainerEngine } from '../../runtime/engine-api.js';
import { LiveContainers } from '../live-containers.js';
import { decide, DEFAULT_GOVERNOR, PressureWindow, type GovernedContainer, type GovernorAction, type GovernorConfig, type GovernorMemory, type PressureReading } from './policy.js';

export interface GovernorEvent {
  readonly type: 'governor-freeze' | 'governor-stop' | 'governor-thaw' | 'governor-restart' | 'governor-note' | 'governor-error' | 'governor-pressure';
  readonly container?: string;
  readonly detail: Record<string, unknown>;
}

export interface GovernorOptions {
  readonly config?: Partial<GovernorConfig>;
  /** Where `pressure/memory` lives (default /proc): the whole system's PSI. */
  readonly procRoot?: string;
  readonly onEvent: (e: GovernorEvent) => void;
  readonly clock?: () => number;
}

/**
 * Watches memory pressure (PSI) of the berth parent cgroup and of the whole system and sheds
 * best-effort containers when it gets high (policy.ts has the rules). Freezing is the engine's freeze
 * (the cgroup v2 freezer), stopping its SIGKILL, so a stopped container is marked stopped by the user
 * and the supervisor leaves it alone until the governor brings it back. Every decision is reported
 * with the numbers that drove it. PSI is sampled on a timer (no event says "pressure is rising" early
 * enough); the containers are looked at only when the decision needs them: pressure above the calm
 * level, something held, or the engine reported a change since the last look.
 */
export class PressureGovernor {
  readonly config: GovernorConfig;
  private memory: GovernorMemory = {};
  /** Containers we froze or stopped, and since when. */
  private readonly held = new Map<string, { state: 'frozen' | 'stopped'; since: number }>();
  private readonly parentWindow: PressureWindow;
  private readonly systemWindow: PressureWindow;
  private readonly live: LiveContainers;
  /** The engine's event generation at the last look at the containers. */
  private lookedAt = -1;
  /** Start of the current stall episode (first reading above the calm level), for the reaction time. */
  private stallSince: number | undefined;

  constructor(private readonly engine: ContainerEngine, private readonly opts: GovernorOptions) {
    this.config = { ...DEFAULT_GOVERNOR, ...opts.config };
    this.parentWindow = new PressureWindow(this.config.windowMs);
    this.systemWindow = new PressureWindow(this.config.windowMs);
    this.live = new LiveContainers(engine);
  }

  /** Whether this host gives the governor something to read (PSI and the berth parent cgroup). */
  static available(engine: Pick<ContainerEngine, 'runtime'>, procRoot = '/proc'): { ok: boolean; why: string } {
    if (!engine.runtime.cgroupsEnforced) return { ok: false, why: engine.runtime.limitsNote };
    if (!fs.existsSync(path.join(procRoot, 'pressure', 'memory'))) return { ok: false, why: 'no PSI (/proc/pressure/memory): boot with psi=1 (see berth doctor)' };
    return { ok: true, why: 'PSI and cgroup v2 available' };
  }

  async run(signal: AbortSignal): Promise<void> {
    const stop = this.live.follow();
    try {
      while (!signal.aborted) {
        await this.tick();
        await sleep(this.config.intervalMs, undefined, { signal }).catch(() => undefined);
      }
    } finally {
      stop();
    }
  }

  /** One sample, decision and execution. */
  async tick(): Promise<void> {
    const reading = this.read();
    if (!reading) return;
    const needed = reading.pressurePct > this.config.lowPct || this.held.size > 0 || this.live.generation !== this.lookedAt;
    // Calm, nothing held, nothing changed: `decide` acts on none of them, so none is read.
    const containers = needed ? this.containers(reading.at) : [];
    if (reading.pressurePct > this.config.lowPct) this.stallSince ??= reading.at;
    else this.stallSince = undefined;
    const decision = decide(reading, containers, this.memory, this.config);
    this.memory = decision.memory;
    const numbers = {
      pressurePct: round(reading.pressurePct), avg10: reading.avg10, highPct: this.config.highPct, lowPct: this.config.lowPct,
      parentMemoryBytes: reading.parentMemoryBytes, parentMemoryMax: reading.parentMemoryMax,
    };
    for (const note of decision.notes) this.opts.onEvent({ type: 'governor-note', detail: { note, ...numbers } });
    for (const action of decision.actions) {
      const target = containers.find((c) => c.id === action.id);
      const detail = {
        reason: action.reason, ...numbers, priority: target?.priority, containerMemoryBytes: target?.memoryBytes,
        ...(this.stallSince !== undefined && (action.kind === 'freeze' || action.kind === 'stop') && { msSinceStallOnset: reading.at - this.stallSince }),
      };
      try {
        await this.execute(action, reading.at);
        this.opts.onEvent({ type: `governor-${action.kind}`, container: action.name, detail });
      } catch (err) {
        this.opts.onEvent({ type: 'governor-error', container: action.name, detail: { action: action.kind, error: toBerthError(err).message, ...detail } });
      }
    }
  }

  private read(): PressureReading | undefined {
    const now = (this.opts.clock ?? Date.now)();
    const parentMemory = this.engine.parentMemory();
    const parent = parentMemory?.pressure;
    let system;
    try {
      system = parsePressure(fs.readFileSync(path.join(this.opts.procRoot ?? '/proc', 'pressure', 'memory'), 'utf8'));
    } catch {
      system = undefined;
    }
    if (!parent && !system) return undefined;
    const pp = parent ? this.parentWindow.add(now, parent.some.totalUs) : 0;
    const sp = system ? this.systemWindow.add(now, system.some.totalUs) : 0;
    return {
      at: now,
      pressurePct: Math.max(pp, sp),
      avg10: Math.max(parent?.some.avg10 ?? 0, system?.some.avg10 ?? 0),
      parentMemoryBytes: parentMemory?.memoryBytes ?? 0,
      parentMemoryMax: parentMemory?.memoryMax ?? Infinity,
    };
  }

  private containers(now: number): GovernedContainer[] {
    const out: GovernedContainer[] = [];
    const seen = new Set<string>();
    this.lookedAt = this.live.generation;
    for (const c of this.live.list()) {
      seen.add(c.id);
      const stats = c.state === 'running' ? this.engine.stats(c) : undefined;
      let held = this.held.get(c.id);
      // Frozen by an earlier agent (only the governor freezes): adopt it, holding from now.
      if (!held && c.state === 'running' && stats?.frozen === true) {
        held = { state: 'frozen', since: now };
        this.held.set(c.id, held);
      }
      // Restarted or removed by someone else meanwhile: no longer ours to hold.
      if (held && ((held.state === 'frozen' && c.state !== 'running') || (held.state === 'stopped' && c.state === 'running'))) {
        this.held.delete(c.id);
        held = undefined;
      }
      let priority;
      try {
        priority = priorityOf(c.options.labels);
      } catch {
        priority = 'normal' as const;
      }
      const state = held ? held.state : c.state === 'running' ? 'running' : 'other';
      out.push({ id: c.id, name: c.name, priority, state, memoryBytes: stats?.memoryCurrent ?? 0, ...(held && { heldSince: held.since }) });
    }
    for (const id of this.held.keys()) if (!seen.has(id)) this.held.delete(id);
    return out;
  }

  private async execute(a: GovernorAction, now: number): Promise<void> {
    switch (a.kind) {
      case 'freeze':
        this.engine.freeze(a.id);
        this.held.set(a.id, { state: 'frozen', since: now });
        return;
      case 'thaw':
        this.engine.thaw(a.id);
        this.held.delete(a.id);
        return;
      case 'stop':
        // SIGKILL reaches frozen tasks on cgroup v2; its memory is freed as soon as they are gone.
        await this.engine.kill(a.id, 'SIGKILL');
        this.held.set(a.id, { state: 'stopped', since: now });
        return;
      case 'restart':
        this.held.delete(a.id);
        await this.engine.start(a.id);
        return;
    }
  }
}

const round = (n: number): number => Math.round(n * 10) / 10;
