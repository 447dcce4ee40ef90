import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/fleet/inventory.js';
import { FleetBus } from '../../src/fleet/service/bus.js';
import { LiveFeed } from '../../src/fleet/service/live.js';
import { openSqlStore } from '../../src/fleet/service/sql-store.js';
import { SqliteDriver } from '../../src/fleet/service/sqlite-driver.js';
import type { FleetStore } from '../../src/fleet/service/store.js';
import { FleetView } from '../../src/fleet/view.js';

// GET /api/v1/stream over a real SQLite store and a loopback HTTP server: a flush of many changed devices
// sends each once, read a chunk at a time with the event loop served between chunks (live.ts).
describe('LiveFeed', () => {
  const COUNT = 1234;
  const ids = Array.from({ length: COUNT }, (_, i) => `d${String(i).padStart(4, '0')}`);
  let dir: string;
  let store: FleetStore;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-live-'));
    store = await openSqlStore(SqliteDriver.open(dir));
    await store.batch(async (w) => {
      for (const id of ids) await w.upsertDevice(id, { online: true });
    });
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends every changed device once, a chunk per turn of the event loop', async () => {
    // The real store, its reads noted with how many turns of the event loop had passed.
    let turns = 0;
    const reads: Array<{ readonly n: number; readonly turns: number }> = [];
    const noted: FleetStore = Object.assign(Object.create(store) as FleetStore, {
      devicesByIds: (chunk: readonly string[]) => {
        reads.push({ n: chunk.length, turns });
        return store.devicesByIds(chunk);
      },
    });
    const bus = new FleetBus();
    const errors: unknown[] = [];
    const live = new LiveFeed(noted, bus, () => new Inventory({}, new FleetView()), (err) => errors.push(err), 10);
    const server = http.createServer((req, res) => live.attach(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const ac = new AbortController();
    let spinning = true;
    const spin = (async () => {
      while (spinning) {
        await yieldToIo();
        turns++;
      }
    })();
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/`, { signal: ac.signal });
      const reader = res.body!.getReader();
      let text = '';
      // The stream is attached once its first comment arrives: updates before it would go nowhere.
      while (!text.includes('\n\n')) text += Buffer.from((await reader.read()).value!).toString();
      for (const id of ids) bus.emit({ type: 'device', id });
      const sent = (): string[] => [...text.matchAll(/event: device\ndata: \{"id":"([^"]+)"/g)].map((m) => m[1]!);
      while (sent().length < COUNT) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
      expect(sent()).toEqual(ids);
      expect(reads.map((r) => r.n)).toEqual([500, 500, 234]);
      // Other work ran between the chunks' reads.
      for (let i = 1; i < reads.length; i++) expect(reads[i]!.turns).toBeGreaterThan(reads[i - 1]!.turns);
      expect(errors).toEqual([]);
    } finally {
      spinning = false;
      await spin;
      ac.abort();
      live.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
