import { afterAll, beforeAll } from 'vitest';
import { PgDriver } from '../../src/fleet/service/pg-driver.js';
import { openSqlStore } from '../../src/fleet/service/sql-store.js';
import { fleetStoreConformance } from '../helpers/conformance/fleet-store.js';
import { startPostgres, type PostgresInstance } from '../helpers/services/postgres.js';

// The FleetStore contract against a real PostgreSQL server (Debian's package, a private cluster on a
// loopback port); the same cases run against SQLite in test/unit/fleet-store.test.ts.
let pg: PostgresInstance;
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

fleetStoreConformance('PostgreSQL', async () => {
  const url = await pg.createDatabase();
  return { store: await openSqlStore(await PgDriver.open(url)), reopen: async () => openSqlStore(await PgDriver.open(url)) };
}, true);
