import { BerthError } from '../errors.js';

/**
 * The staged-rollout planner: which device gets its desired state when, and when to stop. Pure (time
 * is passed in), so the rate and abort rules are unit-tested without a broker; src/fleet/deploy.ts
 * drives it from timers and from the devices' reports.
 */

/** `superseded`: a newer revision (another deploy) reached the device first; neither applied nor failed. */
export type FinalResult = 'applied' | 'failed' | 'rolled-back' | 'rejected' | 'superseded';
export type Outcome = FinalResult | 'offline' | 'timed-out' | 'not-sent';

export const FAILURES: ReadonlySet<Outcome> = new Set<Outcome>(['failed', 'rolled-back', 'rejected']);

export interface RolloutPolicy {
  /** Devices per minute; undefined sends to every device at once. */
  readonly ratePerMin?: number;
  /** Abort when failures reach this share (0–100] of finished devices … */
  readonly abortAfterPct?: number;
  /** … once at least this many devices have finished (default 1). */
  readonly minDevices?: number;
}

export interface RolloutCounts {
  readonly total: number;
  readonly sent: number;
  readonly finished: number;
  readonly applied: number;
  readonly failures: number;
}

export class Rollout {
  private readonly queue: string[];
  private readonly sentAt = new Map<string, number>();
  private readonly results = new Map<string, FinalResult>();
  // Kept incrementally: the executor asks after every report, and fleets have thousands of devices.
  private readonly pending = new Set<string>();
  private applied = 0;
  private failures = 0;
  private startedAt: number | undefined;
  private abortReason: string | undefined;

  constructor(devices: readonly string[], private readonly policy: RolloutPolicy = {}) {
    if (policy.ratePerMin !== undefined && !(policy.ratePerMin > 0)) throw new RangeError('ratePerMin must be > 0');
    if (policy.abortAfterPct !== undefined && !(policy.abortAfterPct > 0 && policy.abortAfterPct <= 100)) throw new RangeError('abortAfterPct must be in (0, 100]');
    this.queue = [...devices];
  }

  /**
   * The devices to send to now and marks them sent. With a rate of N/min the k-th device (from 0) is
   * due k·60/N s after the first: a steady pace from the start, no burst. Nothing once aborted.
   */
  due(now: number): string[] {
    if (this.abortReason !== undefined || this.queue.length === 0) return [];
    this.startedAt ??= now;
    const allowed = this.policy.ratePerMin === undefined ? Infinity : pacedAllowance(this.policy.ratePerMin, this.startedAt, now);
    const n = Math.min(this.queue.length, Math.max(0, allowed - this.sentAt.size));
    const batch = this.queue.splice(0, n);
    for (const d of batch) {
      this.sentAt.set(d, now);
      this.pending.add(d);
    }
    return batch;
  }

  /** Milliseconds until the next device is due, or undefined when nothing is left to send. */
  nextDueIn(now: number): number | undefined {
    if (this.abortReason !== undefined || this.queue.length === 0) return undefined;
    if (this.policy.ratePerMin === undefined || this.startedAt === undefined) return 0;
    return Math.max(0, pacedAt(this.policy.ratePerMin, this.startedAt, this.sentAt.size) - now);
  }

  /** Records a device's final result (the first one counts) and applies the abort rule. */
  finish(device: string, result: FinalResult): void {
    if (!this.sentAt.has(device) || this.results.has(device)) return;
    this.results.set(device, result);
    this.pending.delete(device);
    if (result === 'applied') this.applied++;
    else if (FAILURES.has(result)) this.failures++;
    const { finished, failures } = this.counts();
    this.abortReason ??= abortReason(this.policy, finished, failures);
  }

  sentTime(device: string): number | undefined {
    return this.sentAt.get(device);
  }

  result(device: string): FinalResult | undefined {
    return this.results.get(device);
  }

  /** Sent devices without a final result yet, in the order they were sent. */
  inFlight(): ReadonlySet<string> {
    return this.pending;
  }

  /** Devices that were never sent (all of them after an abort, or before they came due). */
  unsent(): readonly string[] {
    return this.queue;
  }

  get aborted(): string | undefined {
    return this.abortReason;
  }

  /** Nothing left to send and every sent device has a result. */
  get complete(): boolean {
    return (this.abortReason !== undefined || this.queue.length === 0) && this.pending.size === 0;
  }

  counts(): RolloutCounts {
    return { total: this.queue.length + this.sentAt.size, sent: this.sentAt.size, finished: this.results.size, applied: this.applied, failures: this.failures };
  }
}

/**
 * Pacing at `ratePerMin` from `from`: the k-th device (from 0) is due k·60/N s after it, so by `now` this
 * many may have been sent (one at once, then a steady pace: no burst). Shared by the CLI's Rollout and
 * the service's stored rollouts (src/fleet/service/step.ts), which restart `from` at a resume.
 */
export function pacedAllowance(ratePerMin: number, from: number, now: number): number {
  return Math.floor(((now - from) * ratePerMin) / 60_000) + 1;
}

/** When the `k`-th device (from 0) paced from `from` is due. */
export function pacedAt(ratePerMin: number, from: number, k: number): number {
  return from + Math.ceil((k * 60_000) / ratePerMin);
}

/** The abort rule: why to stop, once `finished` ≥ minDevices and failures reach abortAfterPct of them; else undefined. */
export function abortReason(policy: RolloutPolicy, finished: number, failures: number): string | undefined {
  const pct = policy.abortAfterPct;
  if (pct === undefined || finished < (policy.minDevices ?? 1) || (failures * 100) / finished < pct) return undefined;
  return `${failures} of ${finished} finished devices failed (${((failures * 100) / finished).toFixed(0)} % ≥ ${pct} %)`;
}

/** --rate: `N/min` (or a bare N), `N/s`, `N/h` → devices per minute. */
export function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/(s|min|m|h))?$/.exec(text.trim());
  const n = m ? Number(m[1]) * ({ s: 60, min: 1, m: 1, h: 1 / 60 } as Record<string, number>)[m[2] ?? 'min']! : NaN;
  if (!(n > 0)) throw new BerthError('usage', `--rate takes devices per minute such as 10/min, 1/s or 100/h, not "${text}"`);
  return n;
}
