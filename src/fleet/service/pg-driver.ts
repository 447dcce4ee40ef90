import pg from 'pg';
import { BerthError } from '../../errors.js';
import type { SqlDriver, SqlQueryable, Row } from './sql-driver.js';

/**
 * PostgreSQL through `pg` (node-postgres): what lets several `berth fleet serve` instances serve one
 * fleet, each holding a small pool. 64-bit integers and numerics come back as JS numbers (every value
 * berth stores, milliseconds and counts, is far below 2^53), set per pool rather than on pg's global
 * type table so nothing else in the process is affected.
 */
const INT8 = 20;
const NUMERIC = 1700;

export class PgDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  readonly forUpdate = ' FOR UPDATE';
  readonly types = { serialKey: 'BIGSERIAL PRIMARY KEY', bigint: 'BIGINT', real: 'DOUBLE PRECISION' };
  // Any constant: one advisory lock id for berth's migrations, so two instances starting together take turns.
  readonly migrationLock = 'SELECT pg_advisory_xact_lock(7423911)';
  readonly rolloutLock = 'SELECT pg_advisory_xact_lock(7423912)';

  private constructor(private readonly pool: pg.Pool, private readonly where: string) {}

  /** Connects to `url` (postgres://user:pass@host:port/db) and checks the server answers. */
  static async open(url: string, poolSize = 5): Promise<PgDriver> {
    const where = redact(url);
    const pool = new pg.Pool({
      connectionString: url,
      max: poolSize,
      connectionTimeoutMillis: 10_000,
      types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8 || oid === NUMERIC ? Number : pg.types.getTypeParser(oid, format ?? 'text'))) as typeof pg.types.getTypeParser },
    });
    // An idle client's error (the server restarted) must not crash the service; the next query reconnects.
    pool.on('error', () => undefined);
    const driver = new PgDriver(pool, where);
    await driver.all('SELECT 1');
    return driver;
  }

  private queryable(c: pg.Pool | pg.PoolClient): SqlQueryable {
    return {
      all: async <T extends Row>(sql: string, params: readonly unknown[] = []) => (await this.exec(c, sql, params)).rows as T[],
      run: async (sql: string, params: readonly unknown[] = []) => (await this.exec(c, sql, params)).rowCount ?? 0,
    };
  }

  private async exec(c: pg.Pool | pg.PoolClient, sql: string, params: readonly unknown[]): Promise<pg.QueryResult> {
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
    const q = this.queryable(client);
    try {
      await q.run('BEGIN');
      const result = await fn(q);
      await q.run('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
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
