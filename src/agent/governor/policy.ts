import { PRIORITY_POLICIES, type PriorityClass } from '../../cgroup/priority.js';

/**
 * The pressure governor's decisions, as a pure function of what it measured (no I/O, no clock): the
 * executor in governor.ts samples PSI, calls `decide`, and carries out the actions. Kept pure so every
 * rule below is unit-tested with made-up numbers.
 *
 * Rules, checked once per sample:
 * - pressure ≥ `highPct`: shed load, one action per `settleMs` so the effect of the last one shows in
 *   the next samples first. Freeze the sheddable container (best-effort) using the most memory; when
 *   all of them are frozen and one has been frozen for `escalateAfterMs` with pressure still not calm,
 *   stop it (its memory comes back only when it is gone). Critical and normal containers are never
 *   touched: protecting them is the point.
 * - pressure ≤ `lowPct` for `resumeAfterMs`: bring back one container (thaw the smallest frozen one
 *   first, then restart the stopped ones), then wait another calm period before the next.
 * - in between: hold.
 */

export interface GovernorConfig {
  /** Sampling interval. */
  readonly intervalMs: number;
  /** Pressure is the share of wall time with some task stalled on memory, over this sliding window. */
  readonly windowMs: number;
  readonly highPct: number;
  readonly lowPct: number;
  readonly settleMs: number;
  readonly escalateAfterMs: number;
  readonly resumeAfterMs: number;
}

export const DEFAULT_GOVERNOR: GovernorConfig = {
  intervalMs: 1000,
  windowMs: 5000,
  highPct: 20,
  lowPct: 5,
  settleMs: 3000,
  escalateAfterMs: 15_000,
  resumeAfterMs: 60_000,
};

export interface GovernedContainer {
  readonly id: string;
  readonly name: string;
  readonly priority: PriorityClass;
  /** running (and not frozen by us), frozen (by us), stopped (by us), or other (exited on its own, etc.). */
  readonly state: 'running' | 'frozen' | 'stopped' | 'other';
  readonly memoryBytes: number;
  /** When we froze or stopped it. */
  readonly heldSince?: number;
}

export interface PressureReading {
  readonly at: number;
  /** Stall share (%) over the window: max of the berth parent cgroup and the whole system. */
  readonly pressurePct: number;
  /** The kernel's own 10 s average for the same, for the log. */
  readonly avg10: number;
  readonly parentMemoryBytes: number;
  readonly parentMemoryMax: number;
}

export interface GovernorMemory {
  /** When pressure last dropped to calm and has stayed there; undefined while not calm. */
  readonly calmSince?: number;
  readonly lastActionAt?: number;
  /** Set once "nothing left to shed" was reported, until pressure falls again. */
  readonly exhaustedReported?: boolean;
}

export type GovernorActionKind = 'freeze' | 'stop' | 'thaw' | 'restart';

export interface GovernorAction {
  readonly kind: GovernorActionKind;
  readonly id: string;
  readonly name: string;
  readonly reason: string;
}

export interface Decision {
  readonly actions: readonly GovernorAction[];
  /** Reports without an action (e.g. nothing left to shed). */
  readonly notes: readonly string[];
  readonly memory: GovernorMemory;
}

const sheddable = (c: GovernedContainer): boolean => PRIORITY_POLICIES[c.priority].shedRank !== undefined;
const byRankThenMemory = (a: GovernedContainer, b: GovernedContainer): number =>
  (PRIORITY_POLICIES[a.priority].shedRank ?? 0) - (PRIORITY_POLICIES[b.priority].shedRank ?? 0) || b.memoryBytes - a.memoryBytes;

export function decide(reading: PressureReading, containers: readonly GovernedContainer[], mem: GovernorMemory, cfg: GovernorConfig): Decision {
  const now = reading.at;
  const p = reading.pressurePct.toFixed(1);
  const settled = mem.lastActionAt === undefined || now - mem.lastActionAt >= cfg.settleMs;

  if (reading.pressurePct >= cfg.highPct) {
    const base = { ...mem, calmSince: undefined };
    if (!settled) return { actions: [], notes: [], memory: base };
    const running = containers.filter((c) => c.state === 'running' && sheddable(c)).sort(byRankThenMemory);
    const victim = running[0];
    if (victim) {
      return act({ kind: 'freeze', id: victim.id, name: victim.name, reason: `memory pressure ${p}% ≥ ${cfg.highPct}%: freezing the largest ${victim.priority} container` }, base, now);
    }
    const frozen = containers.filter((c) => c.state === 'frozen' && now - (c.heldSince ?? now) >= cfg.escalateAfterMs).sort(byRankThenMemory);
    const stop = frozen[0];
    if (stop) {
      return act({ kind: 'stop', id: stop.id, name: stop.name, reason: `memory pressure ${p}% still ≥ ${cfg.highPct}% with every ${stop.priority} container frozen for ${cfg.escalateAfterMs / 1000}s: stopping the largest` }, base, now);
    }
    const waiting = containers.some((c) => c.state === 'frozen');
    if (!waiting && !mem.exhaustedReported) {
      return { actions: [], notes: [`memory pressure ${p}% ≥ ${cfg.highPct}% and nothing left to shed (no running best-effort containers)`], memory: { ...base, exhaustedReported: true } };
    }
    return { actions: [], notes: [], memory: base };
  }

  if (reading.pressurePct > cfg.lowPct) return { actions: [], notes: [], memory: { ...mem, calmSince: undefined } };

  const calmSince = mem.calmSince ?? now;
  const calm = { ...mem, calmSince, exhaustedReported: false };
  if (now - calmSince < cfg.resumeAfterMs) return { actions: [], notes: [], memory: calm };
  const frozen = containers.filter((c) => c.state === 'frozen').sort((a, b) => a.memoryBytes - b.memoryBytes);
  const stopped = containers.filter((c) => c.state === 'stopped').sort((a, b) => (a.heldSince ?? 0) - (b.heldSince ?? 0));
  const back = frozen[0] ?? stopped[0];
  if (!back) return { actions: [], notes: [], memory: calm };
  const kind = back.state === 'frozen' ? 'thaw' : 'restart';
  const reason = `memory pressure ≤ ${cfg.lowPct}% for ${((now - calmSince) / 1000).toFixed(0)}s (now ${p}%): bringing back ${back.name}`;
  // A fresh calm period must pass before the next one comes back.
  return act({ kind, id: back.id, name: back.name, reason }, { ...calm, calmSince: now }, now);
}

function act(action: GovernorAction, mem: GovernorMemory, now: number): Decision {
  return { actions: [action], notes: [], memory: { ...mem, lastActionAt: now } };
}

/**
 * Stall share over a sliding window from PSI `total` (µs, monotonic): a rate over the last `windowMs`,
 * which reacts faster than the kernel's avg10 and needs no PSI trigger file descriptors.
 */
export class PressureWindow {
  private readonly points: Array<{ at: number; totalUs: number }> = [];

  constructor(private readonly windowMs: number) {}

  /** Adds a reading; returns the stall percentage over the window (0 until two readings exist). */
  add(at: number, totalUs: number): number {
    this.points.push({ at, totalUs });
    while (this.points.length > 2 && at - this.points[1]!.at >= this.windowMs) this.points.shift();
    const first = this.points[0]!;
    const dt = at - first.at;
    if (dt <= 0) return 0;
    return Math.max(0, Math.min(100, ((totalUs - first.totalUs) / 1000 / dt) * 100));
  }
}
