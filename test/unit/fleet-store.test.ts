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

  it('runs a lone write in its turn, not after every transaction queued behind it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-store-'));
    dirs.push(dir);
    const db = SqliteDriver.open(dir);
    await db.run('CREATE TABLE t (x INTEGER)');
    const order: string[] = [];
    let finish!: () => void;
    const held = new Promise<void>((r) => (finish = r));
    const first = db.tx(async () => {
      await held;
      order.push('tx1');
    });
    const lone = db.run('INSERT INTO t (x) VALUES (1)').then(() => order.push('run'));
    // A steady stream of transactions (a rollout's steps and ingest batches) queued after the write.
    const later = db.tx(async () => void order.push('tx2'));
    finish();
    await Promise.all([first, lone, later]);
    expect(order).toEqual(['tx1', 'run', 'tx2']);
    await db.close();
  });
});
