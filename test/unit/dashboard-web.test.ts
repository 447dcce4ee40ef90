import { describe, expect, it } from 'vitest';
import { ago, bytes, celsius, percent } from '../../src/fleet/service/web/format.js';
import { mergeLogLines } from '../../src/fleet/service/log-lines.js';
import { anyFilter, filtersOf, inPage, offersNew } from '../../src/fleet/service/web/pages/fleet-filters.js';
import { href, parseRoute } from '../../src/fleet/service/web/routes.js';
import type { DeviceSummary } from '../../src/fleet/service/web/types.js';

// The dashboard's pure parts (src/fleet/service/web): routes, formats, filter menus, the log merge. The
// pages themselves are checked in a real browser against a real service: test/integration/dashboard.test.ts.

describe('dashboard routes', () => {
  it('reads each page from the hash, and href writes what parseRoute reads', () => {
    expect(parseRoute('')).toMatchObject({ page: 'fleet' });
    expect(parseRoute('#/devices/pi%2F1')).toEqual({ page: 'device', id: 'pi/1' });
    expect(parseRoute(href.device('a b:c'))).toEqual({ page: 'device', id: 'a b:c' });
    expect(parseRoute(href.rollout('r-7'))).toEqual({ page: 'rollout', id: 'r-7' });
    expect(parseRoute(href.rollouts())).toEqual({ page: 'rollouts' });
    expect(parseRoute(href.tokens())).toEqual({ page: 'tokens' });
    expect(parseRoute('#/nowhere/at/all')).toEqual({ page: 'not-found', path: '/nowhere/at/all' });
    const q = new URLSearchParams({ group: 'canary', label: 'site=lab' });
    const fleet = parseRoute(href.fleet(q));
    expect(fleet.page === 'fleet' && filtersOf(fleet.query)).toEqual({ group: 'canary', label: 'site=lab', profile: '' });
    const deploy = parseRoute(href.deploy(new URLSearchParams({ group: 'g' })));
    expect(deploy.page === 'deploy' && deploy.query.get('group')).toBe('g');
    expect(href.fleet(new URLSearchParams())).toBe('#/');
  });
});

describe('dashboard formats', () => {
  it('bytes, percent, temperature and age read as a person writes them', () => {
    expect(bytes(512)).toBe('512 B');
    expect(bytes(112 << 20)).toBe('112 MiB');
    expect(bytes(1536)).toBe('1.5 KiB');
    expect(bytes(null)).toBe('–');
    expect(percent(5)).toBe('5.0 %');
    expect(percent(57.4)).toBe('57 %');
    expect(celsius(45.5)).toBe('45.5 °C');
    const now = Date.parse('2026-12-06T03:00:00Z');
    expect(ago('2026-12-06T02:59:48Z', now)).toBe('12 s ago');
    expect(ago('2026-12-06T02:55:00Z', now)).toBe('5 min ago');
    expect(ago('2026-12-04T03:00:00Z', now)).toBe('2 d ago');
    expect(ago(null, now)).toBe('never');
  });
});

describe('fleet filter menus and paging', () => {
  const dev = (id: string, groups: string[], labels: Record<string, string>, profile: string | null): DeviceSummary => ({ id, online: true, groups, labels, profile });
  it('re-reads the menus only for a device with a group, label or profile they lack', () => {
    const menus = { groups: ['canary'], labels: ['site=lab'], profiles: ['pi4'], total: 3, online: 2 };
    expect(offersNew(menus, dev('a', ['canary'], { site: 'lab' }, 'pi4'))).toBe(false);
    expect(offersNew(menus, dev('a', [], {}, null))).toBe(false);
    expect(offersNew(menus, dev('a', ['edge'], {}, null))).toBe(true);
    expect(offersNew(menus, dev('a', [], { site: 'roof' }, null))).toBe(true);
    expect(offersNew(menus, dev('a', [], {}, 'pi-zero'))).toBe(true);
    expect(anyFilter(filtersOf(new URLSearchParams()))).toBe(false);
    expect(anyFilter(filtersOf(new URLSearchParams('profile=pi4')))).toBe(true);
  });

  it('places a new device id on the page shown or not', () => {
    const page = (next: string | null) => ({ devices: [], next });
    expect(inPage(page('d-199'), '', 'd-150')).toBe(true);
    expect(inPage(page('d-199'), '', 'd-200')).toBe(false);
    expect(inPage(page(null), 'd-199', 'd-200')).toBe(true);
    expect(inPage(page(null), 'd-199', 'd-100')).toBe(false);
  });
});

describe('log follow merge', () => {
  const l = (time: string, text: string) => ({ time, stream: 'stdout' as const, text });
  it('appends only the lines after the last one shown, even when an answer overlaps', () => {
    const first = [l('t1', 'a'), l('t2', 'b')];
    expect(mergeLogLines([], first)).toEqual(first);
    expect(mergeLogLines(first, [l('t2', 'b'), l('t3', 'c')])).toEqual([...first, l('t3', 'c')]);
    // The shown tail rotated out of the device's answer: only newer lines are taken.
    expect(mergeLogLines(first, [l('t1', 'a'), l('t4', 'd')]).map((x) => x.text)).toEqual(['a', 'b', 'd']);
    expect(mergeLogLines(first, [l('t5', 'e')]).map((x) => x.text)).toEqual(['a', 'b', 'e']);
  });
});
