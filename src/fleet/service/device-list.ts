import { setImmediate as yieldToIo } from 'node:timers/promises';
import { BerthError } from '../../errors.js';
import type { Inventory } from '../inventory.js';
import { firstAfter } from '../sorted-ids.js';
import type { ListedIds } from './listed-ids.js';
import { intParam } from './http.js';
import { traced } from './slice-trace.js';
import { deviceSummary, type DeviceSummary } from './present.js';
import type { FleetStore } from './store.js';

/**
 * GET /api/v1/devices: every device the store or the fleet file knows, sorted by id, filtered as the
 * query asks (group and label from the fleet file; profile and online from the device's state), and,
 * with `limit`, one page of it after the id `after` plus the id to ask `after` next.
 *
 * Why pages: at 10,000 devices reading and parsing every device's stored state took 0.4–0.7 s on the
 * benchmark's machine (scripts/bench/fleet-10k.mjs), far over the 100 ms a fleet table may take. A page
 * reads only its own rows: the ids (group/label filters need no more) are known without parsing state,
 * and profile/online filters read the candidates a chunk at a time until the page is full.
 */

/** A page of the list; `next` is the `after` of the next page, null on the last one. */
export interface DevicePage {
  readonly devices: DeviceSummary[];
  readonly next?: string | null;
}

const MAX_PAGE = 1000;
/** Devices read per turn of the event loop when the whole list is asked for. */
const UNPAGED_CHUNK = 500;

interface Filters {
  readonly group: string | null;
  readonly labels: ReadonlyArray<readonly [string, string]>;
  readonly profile: string | null;
  readonly online: string | null;
}

function filtersOf(url: URL): Filters {
  const labels = url.searchParams.getAll('label').map((l) => {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new BerthError('invalid', `query parameter "label" must be KEY=VALUE, not "${l}"`);
    return [l.slice(0, eq), l.slice(eq + 1)] as const;
  });
  const online = url.searchParams.get('online');
  if (online !== null && online !== 'true' && online !== 'false') throw new BerthError('invalid', `query parameter "online" must be true or false, not "${online}"`);
  return { group: url.searchParams.get('group'), labels, profile: url.searchParams.get('profile'), online };
}

/** What the fleet file decides (no device state needed): cheap, since it is asked of every id after the page's start. */
const inventoryMatch = (f: Filters, inventory: Inventory) => (id: string): boolean => {
  if (f.group !== null && !inventory.inGroup(id, f.group)) return false;
  if (f.labels.length === 0) return true;
  const labels = inventory.labelsOf(id);
  return f.labels.every(([k, v]) => labels[k] === v);
};

/** What the device's state decides. */
const stateMatch = (f: Filters) => (d: DeviceSummary): boolean => (f.profile === null || d.profile === f.profile) && (f.online === null || String(d.online) === f.online);

/**
 * `listed` holds the ids, kept sorted (listed-ids.ts): a page starts at a binary search for `after` and
 * walks on only until it is full, so it costs its own rows however large the fleet.
 */
export async function listDevices(store: FleetStore, listed: ListedIds, url: URL): Promise<DevicePage> {
  const f = filtersOf(url);
  const inventory = listed.inventory;
  const paged = url.searchParams.has('limit');
  const limit = paged ? intParam(url, 'limit', MAX_PAGE, 1, MAX_PAGE) : Infinity;
  const ids = listed.all();
  const matches = inventoryMatch(f, inventory);
  const keep = stateMatch(f);
  const byState = f.profile !== null || f.online !== null;
  const chunkSize = byState ? Math.max(Math.min(limit, MAX_PAGE), 200) : Math.min(limit, UNPAGED_CHUNK);
  const devices: DeviceSummary[] = [];
  // `i` walks `ids`: the fleet-file filters narrow them without reading a row (a group of 100 reads 100 rows).
  let i = paged ? firstAfter(ids, url.searchParams.get('after') ?? '') : 0;
  /** The next `chunkSize` ids from `i` that the fleet-file filters keep. */
  const nextChunk = (): string[] => {
    const chunk: string[] = [];
    while (i < ids.length && chunk.length < chunkSize) {
      const id = ids[i++]!;
      if (matches(id)) chunk.push(id);
    }
    return chunk;
  };
  // Without state filters the first chunk is the page; with them, chunks until the page is full. The
  // whole list (no limit) is read a chunk at a time with the event loop served between chunks: read at
  // once it held the loop 0.5 s at 10,000 devices, and every other request (a page) waited for it.
  for (let first = true; devices.length < limit && i < ids.length; first = false) {
    if (!first) await yieldToIo();
    const chunk = traced('listDevices ids', nextChunk);
    const stored = new Map((await store.devicesByIds(chunk)).map((d) => [d.id, d]));
    for (let c = 0; c < chunk.length; c++) {
      const s = deviceSummary(stored.get(chunk[c]!) ?? { id: chunk[c]!, online: false }, inventory);
      if (!keep(s)) continue;
      devices.push(s);
      // A chunk cut short: its rest are still to come, after this device.
      if (devices.length === limit && c < chunk.length - 1) return { devices, next: s.id };
    }
  }
  if (!paged) return { devices };
  // A full page is the last when no id after it passes the fleet-file filters.
  const more = devices.length === limit && traced('listDevices ids', () => {
    for (let j = i; j < ids.length; j++) if (matches(ids[j]!)) return true;
    return false;
  });
  return { devices, next: more ? devices[devices.length - 1]!.id : null };
}
