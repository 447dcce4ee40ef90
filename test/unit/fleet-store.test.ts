import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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

describe('SqliteDriver', () => {
  it('answers a SELECT from the last commit while a transaction runs, instead of queueing behind it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-store-'));
    dirs.push(dir);
    const db = SqliteDriver.open(dir);
    await db.run('CREATE TABLE t (x INTEGER)');
    await db.run('INSERT INTO t (x) VALUES (1)');
    let finish!: () => void;
    const held = new Promise<void>((r) => (finish = r));
    const tx = db.tx(async (q) => {
      await q.run('INSERT INTO t (x) VALUES (2)');
      await held;
    });
    // Not committed yet: the read sees only the first row, and does not wait for the transaction.
    const read = await Promise.race([db.all('SELECT x FROM t ORDER BY x'), new Promise((r) => setTimeout(() => r('waited'), 1000))]);
    expect(read).toEqual([{ x: 1 }]);
    finish();
    await tx;
    expect(await db.all('SELECT x FROM t ORDER BY x')).toEqual([{ x: 1 }, { x: 2 }]);
    await db.close();
  });
});
