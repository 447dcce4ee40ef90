import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMessage, FleetView, type FleetChange } from '../../src/fleet/view.js';
import { FleetBus, type FleetUpdate } from '../../src/fleet/service/bus.js';
import { IngestWriter } from '../../src/fleet/service/ingest-writer.js';
import { SqliteDriver } from '../../src/fleet/service/sqlite-driver.js';
import { openSqlStore } from '../../src/fleet/service/sql-store.js';
import type { DeviceWrites, FleetStore } from '../../src/fleet/service/store.js';

/**
 * IngestWriter over a real SQLite store: what matters is how many commits a burst of device messages
 * costs (one per message made the service spend most of a core at 10,000 devices), so the store is
 * wrapped to count its transactions and refuse any write that is not inside one.
 */

const dirs: string[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const WRITES: ReadonlyArray<keyof DeviceWrites> = ['upsertDevice', 'addTelemetry', 'addEvent', 'settleDevice', 'setDevicePhase'];

async function counted(): Promise<{ store: FleetStore; batches: () => number; lone: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ingest-'));
  dirs.push(dir);
  const real = await openSqlStore(SqliteDriver.open(dir));
  closers.push(() => real.close());
  let batches = 0;
  const lone: string[] = [];
  const store = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'batch') return (fn: (w: DeviceWrites) => Promise<unknown>) => ((batches += 1), target.batch(fn));
      if (WRITES.includes(prop as keyof DeviceWrites)) lone.push(String(prop));
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { store, batches: () => batches, lone };
}

const msg = (device: string, kind: string, body: unknown, retained = false): FleetChange =>
  parseMessage(`berth/v1/${device}/${kind}`, Buffer.from(JSON.stringify(body)), retained)!;

describe('IngestWriter', () => {
  it('writes a burst of device messages a batch per transaction, settles rollouts, and announces after the commit', async () => {
    const { store, batches, lone } = await counted();
    const ids = Array.from({ length: 300 }, (_, i) => `dev-${String(i).padStart(3, '0')}`);
    await store.createRollout({ id: 'r1', name: 'app', state: 'running', createdAt: 1, createdBy: 't', policy: { minDevices: 1, timeoutMs: 60_000 }, images: {}, body: '{}' },
      ids.map((device) => ({ device, revision: 1 })));
    await store.stepRollout('r1', 'i', 2, ids.length, (_r, v) => ({ send: v.next }));
    const bus = new FleetBus();
    const seen: FleetUpdate[] = [];
    const settledAtAnnounce: Array<Promise<unknown>> = [];
    bus.on((u) => {
      seen.push(u);
      // Whoever reacts to an announcement reads the store: it must already hold what was announced.
      if (u.type === 'rollout-device') settledAtAnnounce.push(store.rolloutDevices('r1', 'applied').then((rows) => rows.some((r) => r.device === u.device)));
    });
    const errors: unknown[] = [];
    const writer = new IngestWriter(store, new FleetView(), bus, (e) => errors.push(e), { windowMs: 50, maxMessages: 100, telemetryMs: 1000 });
    for (const id of ids) {
      writer.add(msg(id, 'status', { online: true, time: new Date().toISOString() }));
      writer.add(msg(id, 'progress', { revision: 1, phase: 'pull' }));
      writer.add(msg(id, 'reported', { revision: 1, status: 'applied', services: {} }, true));
      writer.add(msg(id, 'telemetry', { time: new Date().toISOString(), host: { cpu: { percent: 3 } } }));
    }
    await writer.stop();
    expect(errors).toEqual([]);
    // 900 messages at 100 a batch, plus one telemetry batch: 10 commits, where one per message made 1,200.
    expect(batches()).toBe(10);
    expect(lone).toEqual([]);
    const r = await store.getRollout('r1');
    expect(r!.counts).toMatchObject({ applied: 300, sent: 0 });
    const d = await store.getDevice('dev-299');
    expect(d).toMatchObject({ online: true, reported: { revision: 1, status: 'applied' }, telemetry: { cpuPercent: 3 } });
    expect(d!.phase).toBeUndefined(); // the report after the progress cleared it
    expect(await Promise.all(settledAtAnnounce)).toEqual(ids.map(() => true));
    expect(seen.filter((u) => u.type === 'event')).toHaveLength(300); // each device came online
    // One announcement per device and batch, not one per message.
    expect(seen.filter((u) => u.type === 'device').length).toBeLessThan(900);
  });

  it('writes a device once per batch and reads the sent rows of the whole batch at once', async () => {
    const { store: counting } = await counted();
    const calls: string[] = [];
    const store = new Proxy(counting, {
      get(target, prop, receiver) {
        if (prop !== 'batch') return Reflect.get(target, prop, receiver);
        return (fn: (w: DeviceWrites) => Promise<unknown>) => target.batch((w) => fn(new Proxy(w, {
          get(t, p, r) {
            const v = Reflect.get(t, p, r) as unknown;
            return typeof v === 'function' ? (...args: unknown[]) => (calls.push(String(p)), (v as (...a: unknown[]) => unknown).apply(t, args)) : v;
          },
        })));
      },
    });
    await store.createRollout({ id: 'r1', name: 'app', state: 'running', createdAt: 1, createdBy: 't', policy: { minDevices: 1, timeoutMs: 60_000 }, images: {}, body: '{}' },
      ['a', 'b'].map((device) => ({ device, revision: 1 })));
    await store.stepRollout('r1', 'i', 2, 2, (_r, v) => ({ send: v.next }));
    const writer = new IngestWriter(store, new FleetView(), new FleetBus(), (e) => { throw e; }, { windowMs: 50, maxMessages: 100, telemetryMs: 1000 });
    for (const id of ['a', 'b']) {
      writer.add(msg(id, 'reported', { revision: 1, status: 'applying', services: {} }, true));
      writer.add(msg(id, 'progress', { revision: 1, phase: 'pull' }));
      writer.add(msg(id, 'progress', { revision: 1, phase: 'start' }));
    }
    writer.add(msg('a', 'reported', { revision: 1, status: 'applied', services: {} }, true));
    await writer.stop();
    // 7 messages: one read of sent rows, and one write of each kind for the whole batch (phases, a's settle, the devices).
    expect(calls.sort()).toEqual(['sentToEach', 'setDevicePhases', 'settleDevices', 'upsertDevices']);
    expect(await store.getDevice('a')).toMatchObject({ reported: { status: 'applied' } });
    expect((await store.getDevice('a'))!.phase).toBeUndefined();
    expect(await store.getDevice('b')).toMatchObject({ reported: { status: 'applying' }, phase: 'start' });
    expect((await store.rolloutDevices('r1')).map((d) => [d.device, d.outcome, d.phase])).toEqual([['a', 'applied', 'start'], ['b', 'sent', 'start']]);
  });

  it('writes a lone message after the window, without being drained', async () => {
    const { store, batches } = await counted();
    const writer = new IngestWriter(store, new FleetView(), new FleetBus(), (e) => { throw e; }, { windowMs: 30, maxMessages: 100, telemetryMs: 1000 });
    writer.add(msg('solo', 'status', { online: true }));
    expect(await store.getDevice('solo')).toBeUndefined();
    const deadline = Date.now() + 5000;
    while ((await store.getDevice('solo')) === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await store.getDevice('solo')).toMatchObject({ online: true });
    expect(batches()).toBe(1);
    await writer.stop();
  });

  it('keeps a device\'s messages in arrival order across batches', async () => {
    const { store } = await counted();
    const writer = new IngestWriter(store, new FleetView(), new FleetBus(), (e) => { throw e; }, { windowMs: 50, maxMessages: 7, telemetryMs: 1000 });
    for (let i = 0; i < 50; i++) writer.add(msg('d', 'status', { online: i % 2 === 0, time: new Date(1000 + i).toISOString() }));
    await writer.stop();
    expect(await store.getDevice('d')).toMatchObject({ online: false, status: { time: new Date(1049).toISOString() } });
    expect((await store.events({ device: 'd', limit: 100 })).map((e) => e.type).reverse()).toEqual(Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? 'online' : 'offline')));
  });
});

describe('IngestWriter when a commit fails', () => {
  it('runs a rolled-back batch again: every message written and announced once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ingest-'));
    dirs.push(dir);
    const real = await openSqlStore(SqliteDriver.open(dir));
    closers.push(() => real.close());
    // The first transaction does all its writes, then fails as a deadlock abort would: SQLite rolls it back.
    let failures = 1;
    const store = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'batch') {
          return (fn: (w: DeviceWrites) => Promise<unknown>) => target.batch(async (w) => {
            const r = await fn(w);
            if (failures-- > 0) throw new Error('deadlock detected');
            return r;
          });
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const bus = new FleetBus();
    const events: FleetUpdate[] = [];
    bus.on((u) => u.type === 'event' && events.push(u));
    const errors: unknown[] = [];
    const writer = new IngestWriter(store, new FleetView(), bus, (e) => errors.push(e), { windowMs: 10, maxMessages: 100, telemetryMs: 1000 });
    for (const id of ['a', 'b', 'c']) writer.add(msg(id, 'status', { online: true }));
    await writer.stop();
    expect(errors).toEqual([]);
    expect(failures).toBe(-1);
    expect((await real.events({ limit: 10 })).map((e) => e.device).sort()).toEqual(['a', 'b', 'c']);
    expect(events).toHaveLength(3);
    expect(await real.getDevice('c')).toMatchObject({ online: true });
  });
});
