import fs from 'node:fs';
import path from 'node:path';
import Sqlite from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import { BerthError } from '../errors.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS, type Migration } from './migrations.js';

export const DB_FILE = 'berth.db';

export interface OpenStoreOptions {
  readonly readonly?: boolean;
  /** For tests of the migration machinery; production always uses MIGRATIONS. */
  readonly migrations?: readonly Migration[];
}

/**
 * The state store: one SQLite database under the state root.
 *
 * Durability contract: WAL journal with `synchronous=FULL`, so a committed transaction survives kill -9
 * and power loss, and an interrupted one leaves no trace. Migrations run inside one IMMEDIATE
 * transaction each, together with the `user_version` bump, so a crash mid-migration rolls back cleanly
 * and two processes opening the store at once never migrate twice.
 */
export class StateStore {
  readonly db: Database;
  readonly file: string;

  private constructor(db: Database, file: string) {
    this.db = db;
    this.file = file;
  }

  static open(root: string, options: OpenStoreOptions = {}): StateStore {
    const file = path.join(root, DB_FILE);
    if (!options.readonly) fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    let db: Database;
    try {
      db = new Sqlite(file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false, timeout: 5000 });
    } catch (err) {
      throw classifySqliteError(err, file);
    }
    try {
      if (!options.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
      }
      db.pragma('foreign_keys = ON');
      const store = new StateStore(db, file);
      if (!options.readonly) store.migrate(options.migrations ?? MIGRATIONS);
      else store.checkVersion(options.migrations ?? MIGRATIONS);
      return store;
    } catch (err) {
      db.close();
      throw classifySqliteError(err, file);
    }
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Runs `fn` in an IMMEDIATE transaction: all of it commits, or none of it. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  getMeta(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** `PRAGMA integrity_check`; returns the problems found (empty when the file is sound). */
  integrityProblems(): string[] {
    const rows = this.db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    return rows.map((r) => r.integrity_check).filter((s) => s !== 'ok');
  }

  private latest(migrations: readonly Migration[]): number {
    return migrations.reduce((max, m) => Math.max(max, m.version), 0);
  }

  private checkVersion(migrations: readonly Migration[]): void {
    const current = this.schemaVersion;
    const latest = this.latest(migrations);
    if (current > latest) {
      throw new BerthError('conflict', `state store ${this.file} has schema version ${current}, newer than this berth supports (${latest})`, {
        hint: 'upgrade berth, or point --root at another state directory',
      });
    }
  }

  private migrate(migrations: readonly Migration[]): void {
    this.checkVersion(migrations);
    const ordered = [...migrations].sort((a, b) => a.version - b.version);
    ordered.forEach((m, i) => {
      if (m.version !== i + 1) throw new BerthError('internal', `migrations must be numbered 1..N without gaps (found ${m.version} at ${i + 1})`);
    });
    for (const m of ordered) {
      // Re-read inside the transaction: another process may have migrated while we waited for the lock.
      this.transaction(() => {
        if (this.schemaVersion >= m.version) return;
        m.up(this.db);
        this.db.pragma(`user_version = ${m.version}`);
      });
    }
  }
}

export { LATEST_SCHEMA_VERSION };

/** Maps SQLite's error codes to berth's categories; BerthErrors pass through unchanged. */
export function classifySqliteError(err: unknown, file: string): unknown {
  if (err instanceof BerthError) return err;
  const code = (err as { code?: unknown }).code;
  const message = (err as Error).message;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new BerthError('host', `state store ${file} is damaged: ${message}`, { cause: err, hint: `move ${file} aside and run again to start with an empty store` });
  }
  if (code.startsWith('SQLITE_FULL')) return new BerthError('resource', `disk full while writing ${file}`, { cause: err });
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return new BerthError('conflict', `state store ${file} is locked by another process: ${message}`, { cause: err });
  return new BerthError('host', `state store ${file}: ${message}`, { cause: err });
}
