import { BerthError } from '../../errors.js';
import type { DbStats } from './db-stats.js';
import { PgDriver } from './pg-driver.js';
import { SqliteDriver } from './sqlite-driver.js';
import { openSqlStore } from './sql-store.js';
import type { FleetStore } from './store.js';

/**
 * The store `--data DIR [--db URL]` names: PostgreSQL for `--db postgres://…`, else SQLite in
 * `<data>/fleet.db`. Migrated to the current schema before it is returned. `stats` counts PostgreSQL's
 * round trips (SQLite has none: its statements are calls in this process).
 */
export async function openFleetStore(dataDir: string, dbUrl?: string, stats?: DbStats): Promise<FleetStore> {
  if (dbUrl === undefined || dbUrl === '') return openSqlStore(SqliteDriver.open(dataDir));
  if (!/^postgres(ql)?:\/\//.test(dbUrl)) throw new BerthError('usage', `--db takes postgres://USER:PASSWORD@HOST:PORT/DATABASE, not "${dbUrl.replace(/:[^:@/]*@/, ':***@')}"`, { hint: 'leave --db out for SQLite in the --data directory' });
  const driver = await PgDriver.open(dbUrl, undefined, stats);
  try {
    return await openSqlStore(driver);
  } catch (err) {
    await driver.close();
    throw err;
  }
}
