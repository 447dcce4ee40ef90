import type { Statement } from 'better-sqlite3';
import type { StateStore } from './store.js';

/** One row of the `events` table as written: the payload is JSON text the store never parses. */
export interface SpoolRow {
  readonly ts: number;
  readonly kind: string;
  readonly data: string;
}

/** A row as read back, with the id that orders replay. */
export interface StoredSpoolRow extends SpoolRow {
  readonly id: number;
}

/** The meta key counting entries the spool dropped to stay under its cap, since it was last reset. */
export const SPOOL_DROPPED_KEY = 'spool_dropped';

// Bytes, not characters: SQLite's length() of TEXT counts characters.
const BYTES = 'length(CAST(data AS BLOB))';

/**
 * The operations on the `events` table (schema in migrations.ts) that the agent's Spool is built from.
 * It holds no policy: what to drop, when and how much is the Spool's (src/agent/spool.ts). Callers group
 * several operations into one commit with `transaction`.
 */
export class SpoolTable {
  private readonly insertRow: Statement;
  private readonly oldest: Statement;
  private readonly deleteThroughId: Statement;
  private readonly deleteOne: Statement;
  private readonly head: Statement;
  private readonly counted: Statement;

  constructor(private readonly store: StateStore) {
    const db = store.db;
    this.insertRow = db.prepare('INSERT INTO events (ts, kind, data) VALUES (?, ?, ?)');
    this.oldest = db.prepare(`SELECT id, ${BYTES} AS n FROM events WHERE kind = ? ORDER BY id`);
    this.deleteThroughId = db.prepare('DELETE FROM events WHERE kind = ? AND id <= ?');
    this.deleteOne = db.prepare(`DELETE FROM events WHERE id = ? RETURNING ${BYTES} AS n`);
    this.head = db.prepare('SELECT id, ts, kind, data FROM events ORDER BY id LIMIT ?');
    this.counted = db.prepare('SELECT COUNT(*) AS n FROM events');
  }

  /** Runs `fn` in one IMMEDIATE transaction (one fsync): all of it commits, or none of it. */
  transaction<T>(fn: () => T): T {
    return this.store.transaction(fn);
  }

  insert(row: SpoolRow): void {
    this.insertRow.run(row.ts, row.kind, row.data);
  }

  /** Payload bytes (UTF-8) of every row, summed by SQLite. */
  totalBytes(): number {
    return (this.store.db.prepare(`SELECT COALESCE(SUM(${BYTES}), 0) AS n FROM events`).get() as { n: number }).n;
  }

  /** Ids and payload bytes of one kind's rows, oldest first, read lazily: the caller stops when it has seen enough. */
  oldestSizes(kind: string): IterableIterator<{ id: number; n: number }> {
    return this.oldest.iterate(kind) as IterableIterator<{ id: number; n: number }>;
  }

  /** Deletes every row of `kind` up to and including `id` (rows of other kinds are left). */
  deleteThrough(kind: string, id: number): void {
    this.deleteThroughId.run(kind, id);
  }

  /** Deletes one row; its payload bytes, or undefined when it was not there. */
  delete(id: number): number | undefined {
    return (this.deleteOne.get(id) as { n: number } | undefined)?.n;
  }

  /** The oldest `limit` rows, oldest first. */
  peek(limit: number): StoredSpoolRow[] {
    return this.head.all(limit) as StoredSpoolRow[];
  }

  count(): number {
    return (this.counted.get() as { n: number }).n;
  }

  /** The dropped counter as stored (undefined before the first drop); the Spool decides what a bad value means. */
  droppedText(): string | undefined {
    return this.store.getMeta(SPOOL_DROPPED_KEY);
  }

  setDropped(n: number): void {
    this.store.setMeta(SPOOL_DROPPED_KEY, String(n));
  }
}
