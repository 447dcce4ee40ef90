import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { SqliteDriver } from '../../src/fleet/service/sqlite-driver.js';
import { openSqlStore } from '../../src/fleet/service/sql-store.js';
import { fleetStoreConformance } from '../helpers/conformance/fleet-store.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

fleetStoreConformance('SQLite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-store-'));
  dirs.push(dir);
  return { store: await openSqlStore(SqliteDriver.open(dir)), reopen: () => openSqlStore(SqliteDriver.open(dir)) };
}, false);
