import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BerthError } from '../../errors.js';
import { traced, tracedAsync } from './slice-trace.js';
import type { SqlDriver, SqlQueryable, Row } from './sql-driver.js';

/**
 * SQLite through better-sqlite3: one file in the service's data directory, WAL so the API reads while
 * the ingest writes, and synchronous = NORMAL (WAL keeps it consistent across a power cut; the last
 * commits may be lost, which telemetry can afford and a rollout survives, since a device is recorded
 * sent before it is published). One process only: several instances need PostgreSQL.
 */
export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  readonly forUpdate = '';
  readonly types = { serialKey: 'INTEGER PRIMARY KEY AUTOINCREMENT', bigint: 'INTEGER', real: 'REAL' };
  private readonly statements = new Map<string, Database.Statement>();
  /** The running transaction: every query outside it waits for it (see SqlDriver.tx). */
  private busy: Promise<unknown> = Promise.resolve();

  private readonly readStatements = new Map<string, Database.Statement>();

  /**
   * `reader` is a second, read-only connection for SELECTs outside transactions: WAL lets it read the
   * last committed state while a transaction runs on `db`, so an API read does not queue behind a chain
   * of rollout steps and telemetry batches (at 10,000 devices mid-rollout that wait reached seconds).
   */
  private constructor(private readonly db: Database.Database, private readonly reader: Database.Database) {}

  /** Opens (creating) `<dir>/fleet.db`. */
  static open(dir: string): SqliteDriver {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, 'fleet.db');
    let db: Database.Database;
    let reader: Database.Database;
    try {
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      reader = new Database(file, { readonly: true });
      reader.pragma('busy_timeout = 5000');
    } catch (err) {
      throw new BerthError('host', `cannot open the fleet database ${file}: ${(err as Error).message}`, { cause: err });
    }
    return new SqliteDriver(db, reader);
  }

  private direct: SqlQueryable = {
    all: async <T extends Row>(sql: string, params: readonly unknown[] = []) => traced(() => sqlLabel(sql), () => this.statement(sql).all(...bind(params)) as T[]),
    run: async (sql: string, params: readonly unknown[] = []) => traced(() => sqlLabel(sql), () => this.statement(sql).run(...bind(params)).changes),
  };

  private prepare(db: Database.Database, sql: string): Database.Statement {
    try {
      return db.prepare(sql);
    } catch (err) {
      throw new BerthError('internal', `SQLite refused a statement: ${(err as Error).message}: ${sql}`, { cause: err });
    }
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.prepare(this.db, sql);
      // Statements without a result (DDL, INSERT) cannot be read with .all(); callers use run() for them.
      if (!/^\s*(CREATE|DROP|ALTER|BEGIN|COMMIT|ROLLBACK)/i.test(sql)) this.statements.set(sql, s);
    }
    return s;
  }

  /** Resolves when no transaction runs: one that began while we waited is waited for too. */
  private async idle(): Promise<void> {
    for (;;) {
      const b = this.busy;
      await b.catch(() => undefined);
      if (b === this.busy) return;
    }
  }

  async all<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    // A plain SELECT (not INSERT … RETURNING) needs no wait: the reader sees what is committed.
    if (/^\s*SELECT\b/i.test(sql)) {
      let st = this.readStatements.get(sql);
      if (!st) this.readStatements.set(sql, (st = this.prepare(this.reader, sql)));
      const read = st;
      return traced(() => sqlLabel(sql), () => read.all(...bind(params)) as T[]);
    }
    return this.turn(() => this.direct.all<T>(sql, params));
  }

  run(sql: string, params: readonly unknown[] = []): Promise<number> {
    return this.turn(() => this.direct.run(sql, params));
  }

  tx<T>(fn: (q: SqlQueryable) => Promise<T>): Promise<T> {
    return this.turn(() => tracedAsync('sql transaction', async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.direct);
        traced('sql COMMIT', () => this.db.exec('COMMIT'));
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    }));
  }

  /**
   * Runs `fn` when every write queued before it has ended, first come first served. A lone write (a
   * token's last use) takes its turn in the queue rather than waiting for the queue to be empty: under a
   * rollout's steady stream of ingest batches and steps it never was, and the API request behind that
   * write waited seconds.
   */
  private async turn<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.busy;
    let release!: () => void;
    this.busy = new Promise<void>((r) => (release = r));
    await previous.catch(() => undefined);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    await this.idle();
    this.reader.close();
    this.db.close();
  }
}

/** A statement's name in the slice trace: its start, so one statement's runs add up. */
const sqlLabel = (sql: string): string => `sql ${sql.replace(/\s+/g, ' ').trim().slice(0, 60)}`;

/** better-sqlite3 binds no undefined or boolean: NULL and 0/1, as the schema stores them. */
function bind(params: readonly unknown[]): unknown[] {
  return params.map((p) => (p === undefined ? null : typeof p === 'boolean' ? (p ? 1 : 0) : p));
}
