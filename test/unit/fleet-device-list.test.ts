import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/fleet/inventory.js';
import { listDevices } from '../../src/fleet/service/device-list.js';
import { openSqlStore } from '../../src/fleet/service/sql-store.js';
import { SqliteDriver } from '../../src/fleet/service/sqlite-driver.js';
import type { FleetStore } from '../../src/fleet/service/store.js';
import { FleetView, parseMessage } from '../../src/fleet/view.js';
import { filterChoices, fleetFilters } from '../../src/fleet/service/device-filters.js';

// GET /api/v1/devices' list and pages over a real SQLite store: pages read only their rows, and
// walking the pages gives exactly the unpaged list, with every filter.
describe('listDevices', () => {
  let dir: string;
  let store: FleetStore;
  // d00…d24 stored (odd ones offline, every third on another board), f0 and f1 only in the fleet file.
  const inventory = new Inventory({ devices: { f0: { groups: ['g'] }, f1: null, d03: { groups: ['g'], labels: { site: 'x' } }, d06: { groups: ['g'], labels: { site: 'x' } } } }, new FleetView());
  const list = (q: string) => listDevices(store, inventory, new URL(`http://s/api/v1/devices${q}`));

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-device-list-'));
    store = await openSqlStore(SqliteDriver.open(dir));
    for (let i = 0; i < 25; i++) {
      const id = `d${String(i).padStart(2, '0')}`;
      await store.upsertDevice(id, { online: i % 2 === 0, reported: { revision: 1, status: 'applied', board: { profile: i % 3 === 0 ? 'pi5' : 'pi4', model: 'm' } } });
    }
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function walk(q: string, limit: number): Promise<string[]> {
    const ids: string[] = [];
    let after: string | null | undefined = '';
    for (let pages = 0; after !== null; pages++) {
      if (pages > 100) throw new Error('pages never end');
      const page = await list(`?${q}&limit=${limit}${after ? `&after=${after}` : ''}`);
      expect(page.devices.length).toBeLessThanOrEqual(limit);
      ids.push(...page.devices.map((d) => d.id));
      after = page.next;
    }
    return ids;
  }

  it('pages through exactly what the unpaged list holds, with and without filters', async () => {
    const all = await list('');
    expect(all.next).toBeUndefined();
    expect(all.devices.map((d) => d.id)).toEqual([...Array.from({ length: 25 }, (_, i) => `d${String(i).padStart(2, '0')}`), 'f0', 'f1']);
    for (const q of ['', 'online=true', 'profile=pi5', 'group=g', 'label=site=x', 'group=g&online=false', 'online=true&profile=pi5']) {
      const whole = (await list(`?${q}`)).devices.map((d) => d.id);
      for (const limit of [1, 4, 30]) expect(await walk(q, limit), `${q} limit ${limit}`).toEqual(whole);
    }
    expect((await list('?group=g')).devices.map((d) => d.id)).toEqual(['d03', 'd06', 'f0']);
  });

  it('reads the whole list a chunk at a time, answering other work between chunks', async () => {
    const big = await openSqlStore(SqliteDriver.open(path.join(dir, 'big')));
    try {
      await big.batch(async (w) => {
        for (let i = 0; i < 1234; i++) await w.upsertDevice(`b${String(i).padStart(4, '0')}`, { online: true });
      });
      let listing = true;
      let between = 0;
      const other = (async () => {
        while (listing) {
          await new Promise((r) => setImmediate(r));
          if (listing) between++;
        }
      })();
      const all = await listDevices(big, new Inventory({}, new FleetView()), new URL('http://s/api/v1/devices'));
      listing = false;
      await other;
      expect(all.devices.map((d) => d.id)).toEqual(Array.from({ length: 1234 }, (_, i) => `b${String(i).padStart(4, '0')}`));
      // 3 chunks of at most 500: the event loop ran other work at least between them.
      expect(between).toBeGreaterThanOrEqual(2);
    } finally {
      await big.close();
    }
  });

  it('gives one page and where the next starts; refuses a bad limit naming it', async () => {
    const p = await list('?limit=3&after=d20');
    expect(p).toMatchObject({ next: 'd23' });
    expect(p.devices.map((d) => [d.id, d.online, d.profile])).toEqual([['d21', false, 'pi5'], ['d22', true, 'pi4'], ['d23', false, 'pi4']]);
    expect((await list('?limit=5&after=d23')).next).toBeNull();
    await expect(list('?limit=0')).rejects.toThrow(/"limit"/);
    await expect(list('?limit=2&online=maybe')).rejects.toThrow(/"online"/);
  });
});

// GET /api/v1/device-filters: the menus' choices and the fleet's size, from the fleet file and the view.
describe('fleetFilters', () => {
  it('offers each distinct group, key=value label and profile once, sorted, and counts the fleet', () => {
    const view = new FleetView();
    const reported = (profile: string) => Buffer.from(JSON.stringify({ revision: 1, status: 'applied', services: {}, board: { profile, model: 'm' } }));
    for (const [id, profile, online] of [['a', 'pi4', true], ['b', 'pi-zero', false], ['c', 'pi4', true]] as const) {
      view.apply(parseMessage(`berth/v1/${id}/reported`, reported(profile), true)!, 1);
      view.apply(parseMessage(`berth/v1/${id}/status`, Buffer.from(JSON.stringify({ online })), true)!, 1);
    }
    const inventory = new Inventory({ devices: { a: { groups: ['canary'], labels: { site: 'lab' } }, b: { groups: ['canary'], labels: { site: 'roof', tier: '1' } }, z: null } }, view);
    // The fleet file's groups and labels, and those the inventory derives from each board (profile:, model:).
    expect(fleetFilters(view, inventory)).toEqual({
      groups: ['canary', 'model:m', 'profile:pi-zero', 'profile:pi4'], labels: ['model=m', 'profile=pi-zero', 'profile=pi4', 'site=lab', 'site=roof', 'tier=1'],
      profiles: ['pi-zero', 'pi4'], total: 4, online: 2,
    });
    expect(filterChoices([])).toEqual({ groups: [], labels: [], profiles: [] });
  });
});
