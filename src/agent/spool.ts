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
  /** Cap on the payload text held, in UTF-8 bytes; the oldest entries go first when over. Default 4 MiB. */
  readonly maxBytes?: number;
  /** Epoch ms for entries pushed without a ts. Default: Date.now. */
  readonly clock?: () => number;
}

export const DEFAULT_SPOOL_MAX_BYTES = 4 * 1024 * 1024;

const KINDS: ReadonlySet<string> = new Set<SpoolKind>(['telemetry', 'events']);

/**
 * The offline spool: messages waiting for the broker, in the state store's `events` table (whose SQL
 * is src/store/spool.ts's; this class is the policy over it).
 *
 * Contract: every push and ack is one SQLite transaction (the store is WAL with synchronous=FULL), so
 * after kill -9 the spool holds exactly the pushes that returned and not the acks that returned. Payload
 * text is capped at `maxBytes`: a push that goes over deletes the oldest entries (in the same
 * transaction) until it fits, and adds how many to the persistent dropped counter; a payload bigger than
 * the cap on its own is dropped and counted too. Replay is `peek` then `ack` of what was published.
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
    // The running total changes only once the transaction has committed.
    this.total = this.table.transaction(() => {
      let total = this.total;
      for (const r of rows) {
        this.table.insert(r);
        total += r.bytes;
      }
      return total > this.maxBytes ? this.evict(total) : total;
    });
  }

  /** Deletes the oldest entries until `total` fits the cap; returns the new total. Inside a transaction. */
  private evict(total: number): number {
    let freed = 0;
    let count = 0;
    let lastId: number | undefined;
    for (const row of this.table.oldestSizes()) {
      if (total - freed <= this.maxBytes) break;
      freed += row.n;
      count += 1;
      lastId = row.id;
    }
    if (lastId === undefined) return total;
    this.table.deleteThrough(lastId);
    this.table.setDropped(this.dropped() + count);
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

  /** Entries dropped to stay under the cap since the last resetDropped, across restarts. */
  dropped(): number {
    const v = Number(this.table.droppedText() ?? '0');
    return Number.isSafeInteger(v) && v >= 0 ? v : 0;
  }

  resetDropped(): void {
    this.table.setDropped(0);
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
