import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/fleet/service/migrations.js';
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

describe('fleet schema migration 5', () => {
  it('fills the rollouts\' counts and first send from the rows an older berth wrote', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-store-'));
    dirs.push(dir);
    const db = SqliteDriver.open(dir);
    await migrate(db, 1, 4);
    await db.run("INSERT INTO rollouts (id, name, state, created_at, created_by, policy, images, body, sent_count, started_at) VALUES ('r1', 'app', 'running', 1, 't', '{\"minDevices\":1,\"timeoutMs\":60000}', '{}', '{}', 3, 50)");
    const rows: Array<[string, string, number | null]> = [['a', 'applied', 50], ['b', 'failed', 60], ['c', 'sent', 70], ['d', 'pending', null], ['e', 'pending', null]];
    for (const [i, [device, outcome, sentAt]] of rows.entries()) {
      await db.run('INSERT INTO rollout_devices (rollout_id, device, seq, revision, outcome, sent_at) VALUES (?, ?, ?, 1, ?, ?)', ['r1', device, i, outcome, sentAt]);
    }
    await db.close();
    const store = await openSqlStore(SqliteDriver.open(dir));
    try {
      expect(await store.getRollout('r1')).toMatchObject({ counts: { total: 5, applied: 1, failed: 1, sent: 1, pending: 2 }, sentCount: 3, startedAt: 50 });
      // And kept from then on by the triggers.
      await store.stepRollout('r1', 'i', 100, 1, (_r, v) => ({ send: v.next }));
      expect(await store.getRollout('r1')).toMatchObject({ counts: { total: 5, sent: 2, pending: 1 }, sentCount: 4, startedAt: 50 });
    } finally {
      await store.close();
    }
  });
});

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
