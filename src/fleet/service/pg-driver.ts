import pg from 'pg';
import { BerthError } from '../../errors.js';
import type { DbStats } from './db-stats.js';
import type { SqlDriver, SqlQueryable, Row } from './sql-driver.js';

/**
 * PostgreSQL through `pg` (node-postgres): what lets several `berth fleet serve` instances serve one
 * fleet, each holding a small pool. 64-bit integers and numerics come back as JS numbers (every value
 * berth stores, milliseconds and counts, is far below 2^53), set per pool rather than on pg's global
 * type table so nothing else in the process is affected.
 */
const INT8 = 20;
const NUMERIC = 1700;
const TYPES = { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format ?? 'text'))) as typeof pg.types.getTypeParser };
/** How long a lost LISTEN connection waits before connecting again. */
const RELISTEN_MS = 1000;

export class PgDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  readonly forUpdate = ' FOR UPDATE';
  readonly types = { serialKey: 'BIGSERIAL PRIMARY KEY', bigint: 'BIGINT', real: 'DOUBLE PRECISION' };
  // Any constant: one advisory lock id for berth's migrations, so two instances starting together take turns.
  readonly migrationLock = 'SELECT pg_advisory_xact_lock(7423911)';
  readonly rolloutLock = 'SELECT pg_advisory_xact_lock(7423912)';

  readonly notify = 'SELECT pg_notify(?, ?)';

  private constructor(private readonly pool: pg.Pool, private readonly where: string, private readonly url: string, private readonly stats: DbStats | undefined) {}

  /** Connects to `url` (postgres://user:pass@host:port/db) and checks the server answers; `stats` counts its round trips. */
  static async open(url: string, poolSize = 5, stats?: DbStats): Promise<PgDriver> {
    const where = redact(url);
    const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 10_000, types: TYPES });
    // An idle client's error (the server restarted) must not crash the service; the next query reconnects.
    pool.on('error', () => undefined);
    const driver = new PgDriver(pool, where, url, stats);
    await driver.all('SELECT 1');
    return driver;
  }

  /** `seen`, inside a transaction: gets every statement's text, for the round-trip count (DbStats). */
  private queryable(c: pg.Pool | pg.PoolClient, seen?: (sql: string) => void): SqlQueryable {
    return {
      all: async <T extends Row>(sql: string, params: readonly unknown[] = []) => (await this.exec(c, sql, params, seen)).rows as T[],
      run: async (sql: string, params: readonly unknown[] = []) => (await this.exec(c, sql, params, seen)).rowCount ?? 0,
    };
  }

  private async exec(c: pg.Pool | pg.PoolClient, sql: string, params: readonly unknown[], seen: ((sql: string) => void) | undefined): Promise<pg.QueryResult> {
    if (seen) seen(sql);
    else this.stats?.single(sql);
    try {
      return await c.query(numbered(sql), params.map((p) => (p === undefined ? null : p)));
    } catch (err) {
      throw new BerthError('network', `PostgreSQL ${this.where}: ${(err as Error).message}`, { cause: err });
    }
  }

  all<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.queryable(this.pool).all<T>(sql, params);
  }

  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.queryable(this.pool).run(sql, params);
  }

  async tx<T>(fn: (q: SqlQueryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw new BerthError('network', `PostgreSQL ${this.where}: ${(err as Error).message}`, { cause: err });
    }
    const statements: string[] = [];
    const q = this.queryable(client, (sql) => statements.push(sql));
    try {
      await q.run('BEGIN');
      const result = await fn(q);
      await q.run('COMMIT');
      return result;
    } catch (err) {
      statements.push('ROLLBACK');
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
      this.stats?.transaction(statements[1] ?? '', statements.length);
    }
  }

  /**
   * LISTEN on a connection of its own (a pooled one goes back to the pool between queries), connected
   * again RELISTEN_MS after it is lost; what is notified meanwhile is missed (the contract allows it).
   */
  async listen(channel: string, fn: (payload: string) => void): Promise<() => Promise<void>> {
    if (!/^[a-z_]+$/.test(channel)) throw new BerthError('internal', `LISTEN channel "${channel}" is not a plain identifier`);
    let closed = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.url, types: TYPES });
      c.on('notification', (m) => {
        if (m.channel === channel) fn(m.payload ?? '');
      });
      const lost = (): void => {
        if (closed || client !== c) return;
        client = undefined;
        void c.end().catch(() => undefined);
        again();
      };
      c.on('error', lost);
      c.on('end', lost);
      client = c;
      try {
        await c.connect();
        await c.query(`LISTEN ${channel}`);
      } catch (err) {
        if (client === c) client = undefined;
        await c.end().catch(() => undefined);
        throw err;
      }
    };
    const again = (): void => {
      if (!closed) retry = setTimeout(() => void connect().catch(again), RELISTEN_MS);
    };
    try {
      await connect();
    } catch (err) {
      closed = true;
      throw new BerthError('network', `PostgreSQL ${this.where}: LISTEN ${channel}: ${(err as Error).message}`, { cause: err });
    }
    return async () => {
      closed = true;
      if (retry) clearTimeout(retry);
      await client?.end().catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** `?` placeholders → `$1, $2 …` (berth's SQL has no `?` inside literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'database';
  }
}
