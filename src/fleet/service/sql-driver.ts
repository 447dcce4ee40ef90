/**
 * What sql-store.ts needs from a database: queries with `?` placeholders, and transactions that hold
 * the write lock. SQLite (sqlite-driver.ts) and PostgreSQL (pg-driver.ts) implement it; the SQL itself
 * is written once, in sql-store.ts and migrations.ts, in the subset both speak.
 */

export type Row = Record<string, unknown>;

export interface SqlQueryable {
  /** Rows of a SELECT (or of INSERT/UPDATE … RETURNING). `undefined` parameters are bound as NULL. */
  all<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface SqlDriver extends SqlQueryable {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. Queries
   * outside `fn`'s own handle wait until it ends, so nothing else lands in the transaction.
   * SQLite takes the write lock at BEGIN (IMMEDIATE); PostgreSQL uses one pooled connection.
   */
  tx<T>(fn: (q: SqlQueryable) => Promise<T>): Promise<T>;
  /** Appended to a SELECT that locks its rows until the transaction ends: ` FOR UPDATE` on PostgreSQL; SQLite's transaction holds the database lock already. */
  readonly forUpdate: string;
  /** Dialect words for migrations.ts: an auto-increment key, a 64-bit integer, a double. */
  readonly types: { readonly serialKey: string; readonly bigint: string; readonly real: string };
  /** A statement that serializes schema migrations across processes inside a transaction, or undefined. */
  readonly migrationLock?: string;
  /** The same for rollout creations (FleetStore.createRollout), or undefined when `tx` alone serializes writers (SQLite). */
  readonly rolloutLock?: string;
  /**
   * Cross-process wake-ups, where the database has them (PostgreSQL LISTEN/NOTIFY): `notify` is a
   * statement taking (channel, payload) to run inside a transaction; `listen` calls `fn` with the
   * payload of every notification on `channel` (a fixed identifier) until the returned function is called.
   */
  readonly notify?: string;
  listen?(channel: string, fn: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
