import diagnostics_channel from 'node:diagnostics_channel';
import fs from 'node:fs';
import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';

/**
 * A long-task trace of `berth fleet serve`, for finding what a slow API call waited behind (issue 21:
 * a page of 100 takes 30 ms on an idle service and, now and then mid-rollout, 300 ms). Off unless the
 * service is started with BERTH_FLEET_TRACE=FILE (the fleet-10k bench sets it).
 *
 * Parts of the service mark their slices with `traced`/`tracedAsync` (an ingest batch, a rollout step,
 * a SQLite statement, a request, a JSON answer). They publish on a diagnostics channel: Node's own
 * mechanism for this, whose `hasSubscribers` check is all a slice costs when nobody traces, and which
 * needs no tracer handed through every constructor. The channel is a name, not state of ours: the
 * only state is the SliceTrace a service instance creates when asked, and closes.
 *
 * The SliceTrace keeps the last seconds of slices, watches the event loop for stalls (a 10 ms timer
 * that fires late; monitorEventLoopDelay for the histogram), and writes one JSON line per stall with
 * the slices that overlap it, plus one line a second with the loop's delay histogram. Times are epoch
 * ms, so a reader can put them in its own phases.
 */

const CHANNEL = 'berth:fleet:slice';
const channel = diagnostics_channel.channel(CHANNEL);

interface Slice {
  readonly label: string;
  readonly start: number;
  readonly ms: number;
  /** Synchronous: everything in it held the event loop. An async slice's time includes its waits. */
  readonly sync: boolean;
}

/** perf_hooks' NODE_PERFORMANCE_GC_* kinds. */
const GC_KINDS: Readonly<Record<number, string>> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

const now = (): number => performance.timeOrigin + performance.now();

/** Runs `fn`, a synchronous slice of work, timed when the service is traced. */
export function traced<T>(label: string | (() => string), fn: () => T): T {
  if (!channel.hasSubscribers) return fn();
  const start = now();
  try {
    return fn();
  } finally {
    channel.publish({ label: typeof label === 'string' ? label : label(), start, ms: now() - start, sync: true } satisfies Slice);
  }
}

/** Runs `fn`, timed from its start to its settling when the service is traced (waits included). */
export async function tracedAsync<T>(label: string | (() => string), fn: () => Promise<T>): Promise<T> {
  if (!channel.hasSubscribers) return fn();
  const start = now();
  try {
    return await fn();
  } finally {
    channel.publish({ label: typeof label === 'string' ? label : label(), start, ms: now() - start, sync: false } satisfies Slice);
  }
}

/** How late the stall timer may fire before it counts as a stall (ms). */
const STALL_MS = 40;
const TICK_MS = 10;
/** Slices older than this are dropped: a stall is reported at its end, so it can reach back this far. */
const KEEP_MS = 5000;

export class SliceTrace {
  private slices: Slice[] = [];
  private readonly totals = new Map<string, { n: number; ms: number; max: number }>();
  /** Synchronous time per label in the current second (written with the loop's histogram). */
  private perSecond = new Map<string, number>();
  private readonly out: number;
  private readonly tick: NodeJS.Timeout;
  private readonly second: NodeJS.Timeout;
  private readonly eld = monitorEventLoopDelay({ resolution: 10 });
  private readonly gc: PerformanceObserver;
  private last = now();
  private readonly onSlice = (m: unknown): void => this.add(m as Slice);

  constructor(file: string) {
    this.out = fs.openSync(file, 'a');
    diagnostics_channel.subscribe(CHANNEL, this.onSlice);
    this.eld.enable();
    // Collections pause the loop too: they are slices the code did not mark.
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.add({ label: `gc ${GC_KINDS[(e as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other'}`, start: performance.timeOrigin + e.startTime, ms: e.duration, sync: true });
    });
    this.gc.observe({ entryTypes: ['gc'] });
    this.tick = setInterval(() => this.check(), TICK_MS);
    this.second = setInterval(() => this.histogram(), 1000);
  }

  private add(s: Slice): void {
    this.slices.push(s);
    const t = this.totals.get(s.label) ?? { n: 0, ms: 0, max: 0 };
    t.n++;
    t.ms += s.ms;
    t.max = Math.max(t.max, s.ms);
    this.totals.set(s.label, t);
    if (s.sync) this.perSecond.set(s.label, (this.perSecond.get(s.label) ?? 0) + s.ms);
  }

  private check(): void {
    const t = now();
    const late = t - this.last - TICK_MS;
    if (late >= STALL_MS) {
      const from = this.last + TICK_MS;
      // Every slice that ran in [from, t]: synchronous ones are what held the loop; async ones the context.
      // What ran in [from, t]: the synchronous slices (what held the loop) summed per label, since a stall
      // is as often 1,000 short statements as one long one; and the longest async ones, for context.
      const overlap = this.slices.filter((s) => s.start < t && s.start + s.ms > from);
      const sync = new Map<string, { n: number; ms: number }>();
      for (const s of overlap) {
        if (!s.sync) continue;
        const a = sync.get(s.label) ?? { n: 0, ms: 0 };
        a.n++;
        a.ms += Math.min(s.start + s.ms, t) - Math.max(s.start, from);
        sync.set(s.label, a);
      }
      const held = [...sync].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8).map(([label, a]) => ({ label, n: a.n, ms: round(a.ms) }));
      const context = overlap.filter((s) => !s.sync).sort((a, b) => b.ms - a.ms).slice(0, 4).map((s) => ({ label: s.label, ms: round(s.ms) }));
      this.write({ type: 'stall', at: from, ms: late, sync: held, async: context });
    }
    this.last = t;
    const cut = t - KEEP_MS;
    if (this.slices.length > 0 && this.slices[0]!.start + this.slices[0]!.ms < cut) this.slices = this.slices.filter((s) => s.start + s.ms >= cut);
  }

  private histogram(): void {
    const h = this.eld;
    const busy = Object.fromEntries([...this.perSecond].filter(([, ms]) => ms >= 1).map(([l, ms]) => [l, round(ms)]));
    this.write({ type: 'loop', at: now(), p50: round(h.percentile(50) / 1e6), p99: round(h.percentile(99) / 1e6), max: round(h.max / 1e6), busy });
    this.perSecond = new Map();
    h.reset();
  }

  private write(o: object): void {
    fs.writeSync(this.out, `${JSON.stringify(o)}\n`);
  }

  close(): void {
    clearInterval(this.tick);
    clearInterval(this.second);
    this.eld.disable();
    this.gc.disconnect();
    diagnostics_channel.unsubscribe(CHANNEL, this.onSlice);
    const totals = [...this.totals].sort((a, b) => b[1].ms - a[1].ms).slice(0, 40).map(([label, t]) => ({ label, n: t.n, ms: round(t.ms), max: round(t.max) }));
    this.write({ type: 'totals', at: now(), totals });
    fs.closeSync(this.out);
  }
}

const round = (x: number): number => Math.round(x * 10) / 10;
