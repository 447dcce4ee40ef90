import type { Database } from 'better-sqlite3';

/**
 * The schema, as an append-only list of numbered migrations. This module is the only owner of the
 * schema: other modules get typed accessors, never DDL. Never edit a migration that has shipped;
 * add a new one. `PRAGMA user_version` records how far a database has been migrated.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  up(db: Database): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'meta and events',
    up(db) {
      db.exec(`
        CREATE TABLE meta (
          key   TEXT PRIMARY KEY,
          value TEXT NOT NULL
        ) STRICT;
        -- Events waiting to be reported (OOM kills, pull failures …); the agent spools them while offline.
        CREATE TABLE events (
          id    INTEGER PRIMARY KEY AUTOINCREMENT,
          ts    INTEGER NOT NULL,
          kind  TEXT    NOT NULL,
          data  TEXT    NOT NULL
        ) STRICT;
        CREATE INDEX events_ts ON events (ts);
      `);
    },
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.reduce((max, m) => Math.max(max, m.version), 0);
