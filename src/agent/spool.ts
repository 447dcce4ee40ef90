import { BerthError } from '../errors.js';
import type { SpoolTable } from '../store/spool.js';

export { SPOOL_DROPPED_KEY } from '../store/spool.js';

export type SpoolKind = 'telemetry' | 'events';

/** A spooled message: `id` grows with every push, so ascending ids are insertion (and replay) order. */
export interface SpoolEntry {
  readonly id: number;
  readonly kind: SpoolKind;
  /** When it was pushed (or the time the caller gave), epoch ms. */
  readonly ts: number;
  readonly payload: unknown;
}

export interface SpoolItem {
  readonly kind: SpoolKind;
  readonly payload: object;
  readonly ts?: number;
}

export interface SpoolOptions {
  /** Cap on the payload text held, in UTF-8 bytes; the oldest telemetry goes first when over, then the oldest events. Default 4 MiB. */
  readonly maxBytes?: number;
  /** Epoch ms for entries pushed without a ts. Default: Date.now. */
  readonly clock?: () => number;
}

export const DEFAULT_SPOOL_MAX_BYTES = 4 * 1024 * 1024;

const KINDS: ReadonlySet<string> = new Set<SpoolKind>(['telemetry', 'events']);

/** What goes first when the spool is over its cap (see evict). */
const EVICTION_ORDER: readonly SpoolKind[] = ['telemetry', 'events'];

/**
 * The offline spool: messages waiting for the broker, in the state store's `events` table (whose SQL
 * is src/store/spool.ts's; this class is the policy over it).
 *
 * Contract: every push and ack is one SQLite transaction (the store is WAL with synchronous=FULL), so
 * after kill -9 the spool holds exactly the pushes that returned and not the acks that returned. Payload
 * text is capped at `maxBytes`: a push that goes over deletes the oldest entries (in the same
 * transaction) until it fits, telemetry before events, and adds how many to the persistent dropped
 * counter; a payload bigger than the cap on its own is dropped and counted too. Replay is `peek` then `ack` of what was published.
 *
 * The byte total is summed once at open and kept up to date by this object, so one Spool per store:
 * another writer to `events` would make `bytes()` drift until the next open. Each push fsyncs; on an SD
 * card the agent should batch with `pushAll` on the board's flush interval (storage.flushIntervalSeconds).
 */
export class Spool {
  readonly maxBytes: number;
  private total: number;
  private readonly clock: () => number;

  /** `table`: the store's `events` table; the composition root (src/root.ts) builds the one Spool over it. */
  constructor(private readonly table: SpoolTable, options: SpoolOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes <= 0) throw new BerthError('invalid', `spool cap must be a positive number of bytes, not ${this.maxBytes}`);
    this.clock = options.clock ?? Date.now;
    this.total = table.totalBytes();
  }

  push(kind: SpoolKind, payload: object): void {
    this.pushAll([{ kind, payload }]);
  }

  /** Pushes several entries in one transaction (one fsync), in order. */
  pushAll(items: readonly SpoolItem[]): void {
    if (items.length === 0) return;
    const rows = items.map((it) => {
      if (!KINDS.has(it.kind)) throw new BerthError('invalid', `unknown spool kind "${it.kind}"`);
      const data = JSON.stringify(it.payload);
      if (typeof data !== 'string') throw new BerthError('invalid', 'spool payload must be a JSON object');
      return { ts: it.ts ?? this.clock(), kind: it.kind, data, bytes: Buffer.byteLength(data) };
    });
    // A payload bigger than the whole cap could only be kept by dropping everything else, itself last:
    // it is counted as dropped and never written.
    const fitting = rows.filter((r) => r.bytes <= this.maxBytes);
    // The running total changes only once the transaction has committed.
    this.total = this.table.transaction(() => {
      let total = this.total;
      for (const r of fitting) {
        this.table.insert(r);
        total += r.bytes;
      }
      if (fitting.length < rows.length) this.table.setDropped(this.dropped() + rows.length - fitting.length);
      return total > this.maxBytes ? this.evict(total) : total;
    });
  }

  /**
   * Deletes entries until `total` fits the cap; returns the new total. Inside a transaction. Telemetry
   * goes first, oldest first, and events only once no telemetry is left: an event (a crash, an exit, an
   * OOM kill) happens once and says what no later sample can, while the next sample replaces a lost one.
   */
  private evict(total: number): number {
    let freed = 0;
    let count = 0;
    for (const kind of EVICTION_ORDER) {
      let lastId: number | undefined;
      for (const row of this.table.oldestSizes(kind)) {
        if (total - freed <= this.maxBytes) break;
        freed += row.n;
        count += 1;
        lastId = row.id;
      }
      if (lastId !== undefined) this.table.deleteThrough(kind, lastId);
      if (total - freed <= this.maxBytes) break;
    }
    if (count > 0) this.table.setDropped(this.dropped() + count);
    return total - freed;
  }

  /** The oldest `limit` entries, oldest first; nothing is removed until `ack`. */
  peek(limit: number): SpoolEntry[] {
    return this.table.peek(Math.max(0, Math.floor(limit))).map((r) => ({ id: r.id, ts: r.ts, kind: r.kind as SpoolKind, payload: JSON.parse(r.data) as unknown }));
  }

  /** Deletes published entries. Ids no longer there (dropped meanwhile, or acked twice) are ignored. */
  ack(ids: readonly number[]): void {
    if (ids.length === 0) return;
    this.total = this.table.transaction(() => {
      let total = this.total;
      for (const id of ids) total -= this.table.delete(id) ?? 0;
      return total;
    });
  }

  /** Entries dropped to stay under the cap and not yet reported (see forgetDropped), across restarts. */
  dropped(): number {
    const v = Number(this.table.droppedText() ?? '0');
    return Number.isSafeInteger(v) && v >= 0 ? v : 0;
  }

  /**
   * Takes `reported` drops off the counter once they were published: a subtraction in one transaction,
   * not a reset, so drops counted between reading `dropped()` and publishing it stay counted for the
   * next report.
   */
  forgetDropped(reported: number): void {
    if (!(Number.isSafeInteger(reported) && reported > 0)) return;
    this.table.transaction(() => this.table.setDropped(Math.max(0, this.dropped() - reported)));
  }

  /** Payload bytes held now. */
  bytes(): number {
    return this.total;
  }

  /** Entries held now. */
  count(): number {
    return this.table.count();
  }
}
