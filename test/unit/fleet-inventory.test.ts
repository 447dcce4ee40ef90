import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { planDeploy } from '../../src/fleet/deploy.js';
import { readFleetFile } from '../../src/fleet/fleet-file.js';
import { Inventory } from '../../src/fleet/inventory.js';
import { deviceRows } from '../../src/fleet/status.js';
import { FleetView, parseMessage } from '../../src/fleet/view.js';
import { parseTopic } from '../../src/protocol/topics.js';
import { describeChange } from '../../src/fleet/watch.js';

const msg = (topic: string, body: unknown, retained = true) => parseMessage(topic, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), retained);
const reported = (revision: number, status = 'applied', services: Record<string, { state: string }> = {}) => ({
  revision, status, services: Object.fromEntries(Object.entries(services).map(([k, v]) => [k, { ...v, image: 'x', restarts: 0, oomKilled: false, health: 'none' }])),
  agent: { version: '0.1.0' }, board: { profile: 'rpi-4b', model: 'Raspberry Pi 4 Model B Rev 1.4' }, time: '2026-11-22T10:00:00.000Z',
});

function viewOf(...changes: Array<ReturnType<typeof msg>>): FleetView {
  const v = new FleetView();
  for (const c of changes) v.apply(c!, Date.parse('2026-11-22T11:00:00Z'));
  return v;
}

function writeFleetFile(text: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-file-')), 'fleet.yaml');
  fs.writeFileSync(file, text);
  return file;
}

describe('fleet view', () => {
  it('parses device topics and nothing else', () => {
    expect(parseTopic('berth/v1/pi-1/reported')).toEqual({ device: 'pi-1', kind: 'reported' });
    expect(parseTopic('berth/v1/pi-1/cmd/c1/result')).toEqual({ device: 'pi-1', kind: 'result', commandId: 'c1' });
    expect(parseTopic('berth/v1/_fleet/sync/x')).toBeUndefined();
    expect(parseTopic('other/v1/pi-1/reported')).toBeUndefined();
    expect(parseTopic('berth/v1/pi-1/cmd/c1')).toBeUndefined();
  });

  it('drops malformed device messages instead of trusting them', () => {
    expect(msg('berth/v1/pi-1/reported', '{not json')).toBeUndefined();
    expect(msg('berth/v1/pi-1/reported', { revision: -1, status: 'applied', services: {} })).toBeUndefined();
    expect(msg('berth/v1/pi-1/reported', { revision: 1, status: 'bogus', services: {} })).toBeUndefined();
    expect(msg('berth/v1/pi-1/status', { online: 'yes' })).toBeUndefined();
    expect(msg('berth/v1/pi-1/desired', { revision: 'x' })).toBeUndefined();
    expect(msg('berth/v1/pi-1/desired', '')).toEqual({ kind: 'desired', device: 'pi-1', revision: 0 });
  });

  it('next revision is one above both the retained desired and the reported revision', () => {
    const v = viewOf(msg('berth/v1/a/desired', { revision: 7, services: {} }), msg('berth/v1/a/reported', reported(5)), msg('berth/v1/b/reported', reported(9)), msg('berth/v1/b/desired', { revision: 3, services: {} }));
    expect(v.nextRevision('a')).toBe(8);
    expect(v.nextRevision('b')).toBe(10);
    expect(v.nextRevision('never-seen')).toBe(1);
    expect(planDeploy(v, ['a', 'c'])).toEqual([
      { device: 'a', revision: 8, currentRevision: 5, online: false },
      { device: 'c', revision: 1, online: false },
    ]);
    // A retained desired state at the protocol's maximum (published by someone else) would make the next one unusable: said, not sent.
    const top = viewOf(msg('berth/v1/x/desired', { revision: 2 ** 31 - 1, services: {} }));
    expect(() => planDeploy(top, ['x'])).toThrow(/x: the next revision would be 2147483648, over the protocol's maximum 2147483647/);
  });

  it('a retained message dates the device by its own time, a live one by arrival', () => {
    const v = viewOf(msg('berth/v1/a/status', { online: true, time: '2026-11-20T00:00:00.000Z' }));
    expect(new Date(v.devices.get('a')!.lastSeen!).toISOString()).toBe('2026-11-20T00:00:00.000Z');
    v.apply(msg('berth/v1/a/telemetry', { time: 'x', host: { cpu: { percent: 3 } } }, false)!, Date.parse('2026-11-22T12:00:00Z'));
    expect(new Date(v.devices.get('a')!.lastSeen!).toISOString()).toBe('2026-11-22T12:00:00.000Z');
  });
});

describe('inventory', () => {
  it('reads a fleet file and refuses a malformed one with the reason', async () => {
    const ok = await readFleetFile(writeFleetFile('devices:\n  pi-1: {groups: [canary], labels: {site: lab}}\n  pi-2:\ngroups:\n  canary: [pi-3]\n'));
    expect(Object.keys(ok.devices!)).toEqual(['pi-1', 'pi-2']);
    await expect(readFleetFile(writeFleetFile('devices:\n  "bad id": {}\n'))).rejects.toThrow(/fleet file .* is invalid/);
    await expect(readFleetFile(writeFleetFile('devices:\n  pi-1: {group: [x]}\n'))).rejects.toThrow(/devices\.pi-1\.group: unknown key$/);
    await expect(readFleetFile('/nonexistent/fleet.yaml')).rejects.toMatchObject({ category: 'notFound' });
  });

  it('merges devices from the file and the broker; groups and labels from both', async () => {
    const file = await readFleetFile(writeFleetFile('devices:\n  pi-1: {groups: [canary], labels: {site: lab}}\ngroups:\n  canary: [pi-3]\n'));
    const v = viewOf(msg('berth/v1/pi-2/reported', reported(1)), msg('berth/v1/pi-1/reported', reported(1)));
    const inv = new Inventory(file, v);
    expect(inv.ids()).toEqual(['pi-1', 'pi-2', 'pi-3']);
    expect(inv.groupsOf('pi-1')).toEqual(['canary', 'profile:rpi-4b', 'model:Raspberry Pi 4 Model B Rev 1.4']);
    expect(inv.labelsOf('pi-1')).toEqual({ profile: 'rpi-4b', model: 'Raspberry Pi 4 Model B Rev 1.4', site: 'lab' });
    expect(inv.select({ group: 'canary' })).toEqual(['pi-1', 'pi-3']);
    expect(inv.select({ group: 'profile:rpi-4b' })).toEqual(['pi-1', 'pi-2']);
    expect(inv.select({ all: true })).toEqual(['pi-1', 'pi-2', 'pi-3']);
    expect(inv.select({ devices: ['pi-9', 'pi-1', 'pi-9'] })).toEqual(['pi-1', 'pi-9']);
    expect(() => inv.select({ group: 'nope' })).toThrow(/group "nope" has no devices/);
    expect(() => inv.select({})).toThrow(/exactly one of/);
    expect(() => inv.select({ all: true, group: 'canary' })).toThrow(/exactly one of/);
    expect(() => inv.select({ devices: ['a/b'] })).toThrow(/invalid device id "a\/b"/);
    expect(() => new Inventory({}, new FleetView()).select({ all: true })).toThrow(/no devices/);
  });

  it('status rows: services up/total, telemetry, pending revision', () => {
    const v = viewOf(
      msg('berth/v1/a/status', { online: true, time: '2026-11-22T10:00:00.000Z' }),
      msg('berth/v1/a/reported', reported(4, 'applied', { web: { state: 'running' }, db: { state: 'exited' } })),
      msg('berth/v1/a/desired', { revision: 5, services: {} }),
      msg('berth/v1/a/telemetry', { time: 't', host: { cpu: { percent: 12.34 }, memory: { totalBytes: 1000, usedBytes: 250 }, temperatureC: 51.5 } }, false),
    );
    expect(deviceRows(new Inventory({}, v), v)).toEqual([{
      device: 'a', online: true, groups: ['profile:rpi-4b'], revision: 4, status: 'applied', board: 'rpi-4b', agent: '0.1.0', desiredRevision: 5,
      servicesUp: 1, servicesTotal: 2, cpuPercent: 12.3, memoryPercent: 25, temperatureC: 51.5, lastSeen: '2026-11-22T11:00:00.000Z',
    }]);
  });

  it('watch prints a line only when something changed', () => {
    const v = viewOf(msg('berth/v1/a/status', { online: true }), msg('berth/v1/a/reported', reported(1)));
    expect(describeChange(msg('berth/v1/a/status', { online: true })!, v, false)).toBeUndefined();
    expect(describeChange(msg('berth/v1/a/status', { online: false })!, v, false)).toBe('a: offline');
    expect(describeChange(msg('berth/v1/a/reported', reported(1))!, v, false)).toBeUndefined();
    expect(describeChange(msg('berth/v1/a/reported', reported(2, 'applying'))!, v, false)).toBe('a: revision 2 applying, services 0/0 up');
    expect(describeChange(msg('berth/v1/a/telemetry', { time: 't', host: {} }, false)!, v, false)).toBeUndefined();
  });
});
