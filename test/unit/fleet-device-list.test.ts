import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/fleet/inventory.js';
import { listDevices } from '../../src/fleet/service/device-list.js';
import { ListedIds } from '../../src/fleet/service/listed-ids.js';
import { openSqlStore } from '../../src/fleet/service/sql-store.js';
import { SqliteDriver } from '../../src/fleet/service/sqlite-driver.js';
import type { FleetStore } from '../../src/fleet/service/store.js';
import { FleetView, parseMessage } from '../../src/fleet/view.js';
import { SortedIds, firstAfter, mergeSorted } from '../../src/fleet/sorted-ids.js';

// GET /api/v1/devices' list and pages over a real SQLite store: pages read only their rows, and
// walking the pages gives exactly the unpaged list, with every filter.
describe('listDevices', () => {
  let dir: string;
  let store: FleetStore;
  // d00…d24 stored (odd ones offline, every third on another board), f0 and f1 only in the fleet file.
  const inventory = new Inventory({ devices: { f0: { groups: ['g'] }, f1: null, d03: { groups: ['g'], labels: { site: 'x' } }, d06: { groups: ['g'], labels: { site: 'x' } } } }, new FleetView());
  let listed: ListedIds;
  const list = (q: string) => listDevices(store, listed, new URL(`http://s/api/v1/devices${q}`));

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-device-list-'));
    store = await openSqlStore(SqliteDriver.open(dir));
    for (let i = 0; i < 25; i++) {
      const id = `d${String(i).padStart(2, '0')}`;
      await store.upsertDevice(id, { online: i % 2 === 0, reported: { revision: 1, status: 'applied', board: { profile: i % 3 === 0 ? 'pi5' : 'pi4', model: 'm' } } });
    }
    // The store's devices are known only to the store here (none is in the view): listed all the same.
    listed = await ListedIds.load(store, inventory);
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
      const all = await listDevices(big, await ListedIds.load(big, new Inventory({}, new FleetView())), new URL('http://s/api/v1/devices'));
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

  it('lists a device that appears after the start (in the view, then stored), in its place, with its groups', async () => {
    const view = new FleetView();
    const own = await openSqlStore(SqliteDriver.open(path.join(dir, 'late')));
    try {
      const report = (id: string, profile: string) => parseMessage(`berth/v1/${id}/reported`, Buffer.from(JSON.stringify({ revision: 1, status: 'applied', services: {}, board: { profile, model: 'm' } })), true)!;
      for (const id of ['a1', 'a3']) {
        view.apply(report(id, 'pi4'), 1);
        await own.upsertDevice(id, { online: true });
      }
      const late = await ListedIds.load(own, new Inventory({ devices: { a0: { groups: ['g'] } } }, view));
      const ids = async (q: string) => (await listDevices(own, late, new URL(`http://s/api/v1/devices${q}`))).devices.map((d) => d.id);
      expect(await ids('')).toEqual(['a0', 'a1', 'a3']);
      const before = late.all();
      expect(late.all()).toBe(before); // nothing new: no merge, no sort
      // Mid-rollout a device is heard of: the next page shows it, between the ones it sorts between.
      view.apply(report('a2', 'pi5'), 2);
      await own.upsertDevice('a2', { online: true });
      expect(await ids('')).toEqual(['a0', 'a1', 'a2', 'a3']);
      expect(await ids('?limit=2&after=a1')).toEqual(['a2', 'a3']);
      expect(await ids('?group=profile:pi5')).toEqual(['a2']);
      expect(await ids('?group=g&limit=1')).toEqual(['a0']);
      expect((await listDevices(own, late, new URL('http://s/api/v1/devices?group=g&limit=1'))).next).toBeNull();
      expect((await listDevices(own, late, new URL('http://s/api/v1/devices?group=profile:pi4&limit=1'))).next).toBe('a1');
    } finally {
      await own.close();
    }
  });
});

describe('SortedIds', () => {
  it('keeps every id added once, in string order, the same array until one is added', () => {
    const ids = new SortedIds();
    for (const id of ['m', 'b', 'z', 'b', 'B', 'a-1', 'a10', 'a2']) ids.add(id);
    const all = ids.all();
    expect(all).toEqual(['B', 'a-1', 'a10', 'a2', 'b', 'm', 'z']);
    expect(ids.size).toBe(7);
    expect(ids.all()).toBe(all);
    ids.add('m');
    expect(ids.all()).toBe(all);
    ids.add('c');
    ids.add('0');
    expect(ids.all()).toEqual(['0', 'B', 'a-1', 'a10', 'a2', 'b', 'c', 'm', 'z']);
    expect(ids.has('c') && !ids.has('y')).toBe(true);
  });

  it('agrees with sorting the union, for random ids added in random bursts', () => {
    const ids = new SortedIds();
    const every = new Set<string>();
    let seed = 7;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let burst = 0; burst < 50; burst++) {
      for (let k = rand(40); k > 0; k--) {
        const id = `d${rand(500)}`;
        ids.add(id);
        every.add(id);
      }
      expect(ids.all()).toEqual([...every].sort());
    }
  });

  it('merges two sorted lists into their distinct union, and finds where a page after an id starts', () => {
    expect(mergeSorted(['a', 'c', 'e'], ['b', 'c', 'f'])).toEqual(['a', 'b', 'c', 'e', 'f']);
    expect(mergeSorted([], ['x'])).toEqual(['x']);
    const sorted = ['b', 'd', 'f'];
    expect([firstAfter(sorted, ''), firstAfter(sorted, 'a'), firstAfter(sorted, 'b'), firstAfter(sorted, 'c'), firstAfter(sorted, 'f'), firstAfter(sorted, 'z')]).toEqual([0, 0, 1, 1, 3, 3]);
    expect(firstAfter([], 'a')).toBe(0);
  });
});
