import { describe, expect, it } from 'vitest';
import type { FleetFile } from '../../src/fleet/fleet-file.js';
import { Inventory } from '../../src/fleet/inventory.js';
import { FilterFacets } from '../../src/fleet/service/device-filters.js';
import { boardProfile } from '../../src/fleet/service/present.js';
import { FleetView, parseMessage } from '../../src/fleet/view.js';

// GET /api/v1/device-filters: the menus' choices and the fleet's size, kept as the view changes
// (device-filters.ts), checked against the menus built from scratch out of the same inventory.

const reported = (profile: string, model = 'm') => Buffer.from(JSON.stringify({ revision: 1, status: 'applied', services: {}, board: { profile, model } }));
const status = (online: boolean) => Buffer.from(JSON.stringify({ online }));
const telemetry = Buffer.from(JSON.stringify({ time: '2026-12-06T00:00:00Z', host: { cpu: { percent: 3 } } }));

function deliver(view: FleetView, id: string, kind: string, payload: Buffer): void {
  view.apply(parseMessage(`berth/v1/${id}/${kind}`, payload, false)!, 1);
}

/** What the menus must say: every id's groups, labels and profile, read afresh (the contract's definition). */
function fromScratch(view: FleetView, inventory: Inventory) {
  const groups = new Set<string>();
  const labels = new Set<string>();
  const profiles = new Set<string>();
  let online = 0;
  for (const id of inventory.ids()) {
    for (const g of inventory.groupsOf(id)) groups.add(g);
    for (const [k, v] of Object.entries(inventory.labelsOf(id))) labels.add(`${k}=${v}`);
    const p = boardProfile(view.devices.get(id)?.reported as Record<string, unknown> | undefined);
    if (p !== null) profiles.add(p);
    if (view.devices.get(id)?.online) online++;
  }
  return { groups: [...groups].sort(), labels: [...labels].sort(), profiles: [...profiles].sort(), total: inventory.ids().length, online };
}

describe('FilterFacets', () => {
  const file: FleetFile = { devices: { a: { groups: ['canary'], labels: { site: 'lab' } }, b: { groups: ['canary'], labels: { site: 'roof', tier: '1' } }, z: null } };

  it('offers each distinct group, key=value label and profile once, sorted, and counts the fleet', () => {
    const view = new FleetView();
    // Devices that were in the view before the menus were made are counted too.
    deliver(view, 'a', 'reported', reported('pi4'));
    deliver(view, 'a', 'status', status(true));
    const inventory = new Inventory(file, view);
    const facets = new FilterFacets(inventory, view);
    for (const [id, profile, online] of [['b', 'pi-zero', false], ['c', 'pi4', true]] as const) {
      deliver(view, id, 'reported', reported(profile));
      deliver(view, id, 'status', status(online));
    }
    // The fleet file's groups and labels, and those the inventory derives from each board (profile:, model:).
    expect(facets.fleetFilters()).toEqual({
      groups: ['canary', 'model:m', 'profile:pi-zero', 'profile:pi4'], labels: ['model=m', 'profile=pi-zero', 'profile=pi4', 'site=lab', 'site=roof', 'tier=1'],
      profiles: ['pi-zero', 'pi4'], total: 4, online: 2,
    });
    expect(new FilterFacets(new Inventory({}, new FleetView()), new FleetView()).fleetFilters()).toEqual({ groups: [], labels: [], profiles: [], total: 0, online: 0 });
  });

  it('shows a changed group, profile or online state in the next call, and drops what no device offers any more', () => {
    const view = new FleetView();
    const inventory = new Inventory(file, view);
    const facets = new FilterFacets(inventory, view);
    deliver(view, 'a', 'reported', reported('pi4'));
    deliver(view, 'c', 'reported', reported('pi4'));
    expect(facets.fleetFilters().groups).toEqual(['canary', 'model:m', 'profile:pi4']);
    deliver(view, 'a', 'reported', reported('pi5', 'cm5'));
    expect(facets.fleetFilters()).toMatchObject({ groups: ['canary', 'model:cm5', 'model:m', 'profile:pi4', 'profile:pi5'], profiles: ['pi4', 'pi5'] });
    deliver(view, 'c', 'reported', reported('pi5', 'cm5'));
    expect(facets.fleetFilters()).toMatchObject({ groups: ['canary', 'model:cm5', 'profile:pi5'], labels: ['model=cm5', 'profile=pi5', 'site=lab', 'site=roof', 'tier=1'], profiles: ['pi5'] });
    deliver(view, 'c', 'status', status(true));
    expect(facets.fleetFilters().online).toBe(1);
    deliver(view, 'c', 'status', status(false));
    expect(facets.fleetFilters().online).toBe(0);
    // A device first heard of through telemetry is in the fleet, with nothing to offer yet.
    deliver(view, 'new', 'telemetry', telemetry);
    expect(facets.fleetFilters()).toMatchObject({ total: 5, profiles: ['pi5'] });
  });

  it('answers the same arrays while nothing the menus show changes', () => {
    const view = new FleetView();
    const facets = new FilterFacets(new Inventory(file, view), view);
    deliver(view, 'a', 'reported', reported('pi4'));
    const first = facets.fleetFilters();
    deliver(view, 'a', 'telemetry', telemetry);
    deliver(view, 'a', 'reported', reported('pi4'));
    deliver(view, 'b', 'status', status(false));
    const second = facets.fleetFilters();
    expect(second.groups).toBe(first.groups);
    expect(second.labels).toBe(first.labels);
    expect(second.profiles).toBe(first.profiles);
  });

  it('agrees with the menus built from scratch after any sequence of reports, statuses and new devices', () => {
    // A fixed pseudo-random sequence (so a failure reproduces): boards switch among few values so that
    // entries are shared by several devices and go away only with the last of them.
    let seed = 21;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const view = new FleetView();
    const inventory = new Inventory({ ...file, groups: { 'profile:pi4': ['b', 'd3'] } }, view);
    const facets = new FilterFacets(inventory, view);
    for (let step = 0; step < 2000; step++) {
      const id = ['a', 'b', 'z', `d${rnd(8)}`][rnd(4)]!;
      const kind = rnd(3);
      if (kind === 0) deliver(view, id, 'reported', reported(['pi4', 'pi5', 'zero'][rnd(3)]!, ['m', 'n'][rnd(2)]!));
      else if (kind === 1) deliver(view, id, 'status', status(rnd(2) === 0));
      else deliver(view, id, 'telemetry', telemetry);
      expect(facets.fleetFilters(), `after step ${step}`).toEqual(fromScratch(view, inventory));
    }
    facets.close();
    deliver(view, 'late', 'reported', reported('gone'));
    expect(facets.fleetFilters().profiles).not.toContain('gone');
  });
});
