import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InstallLayout } from '../../src/agent/upgrade/layout.js';
import { formatRecord, parseRecord } from '../../src/agent/upgrade/records.js';
import { Trial } from '../../src/agent/upgrade/trial.js';
import { currentApps, upgradeTarget } from '../../src/fleet/upgrade.js';
import { FleetView, parseMessage } from '../../src/fleet/view.js';
import type { ReportedState } from '../../src/protocol/types.js';
import { testFleetKey } from '../helpers/signing.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const bundle = { ref: '127.0.0.1:5000/berth/agent:0.2.0', digest: DIGEST };
const view = (device: string, payload: string): FleetView => {
  const v = new FleetView();
  v.apply(parseMessage(`berth/v1/${device}/desired`, Buffer.from(payload), true)!, Date.now());
  return v;
};
const reported = (agent: ReportedState['agent'], status: ReportedState['status'] = 'applied'): ReportedState => ({
  revision: 3, status, services: {}, agent, board: { profile: 'rpi-4b', model: 'x' }, time: 't',
});

describe('upgrade records', () => {
  it('are key=value lines the launcher reads; a newline in a value cannot forge a key', () => {
    const text = formatRecord({ state: 'rolled-back', cause: 'exited\nstate=upgraded', to: 'v2', from: undefined });
    expect(text).toBe('state=rolled-back\ncause=exited state=upgraded\nto=v2\n');
    expect(parseRecord(text)).toEqual({ state: 'rolled-back', cause: 'exited state=upgraded', to: 'v2' });
  });
});

describe('install layout and trial', () => {
  const prefix = (): InstallLayout => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-layout-'));
    for (const v of ['v1', 'v2', 'v0']) fs.mkdirSync(path.join(dir, 'versions', v), { recursive: true });
    const layout = new InstallLayout(dir);
    layout.ensure();
    layout.point('current', 'v1');
    return layout;
  };

  it('switches current by rename and refuses a version that is not installed', () => {
    const layout = prefix();
    layout.point('current', 'v2');
    expect(layout.linked('current')).toBe('v2');
    expect(fs.readlinkSync(path.join(layout.prefix, 'current'))).toBe('versions/v2');
    expect(() => layout.point('current', 'v9')).toThrow(/version v9 is not installed/);
    expect(() => layout.versionDir('../etc')).toThrow(/not a version directory name/);
  });

  it('confirms once started and reconciled (and the broker, when it has one): result first, then the record goes, then the launcher is told', () => {
    const layout = prefix();
    layout.point('previous', 'v1');
    layout.point('current', 'v2');
    layout.writeTrial({ to: 'v2', from: 'v1', window: 120, starts: 1, digest: DIGEST });
    const signals: Array<[number, string]> = [];
    const trial = new Trial({ layout, running: 'v2', trialLauncher: 4242 }, true, (pid, sig) => signals.push([pid, sig]), () => undefined, () => new Date('2026-12-06T00:00:00Z'));
    trial.stage('started');
    trial.stage('reconciled');
    expect(layout.trial()).toBeDefined();
    expect(fs.readFileSync(layout.progressFile, 'utf8')).toBe('reconciled\n');
    trial.stage('broker');
    expect(layout.trial()).toBeUndefined();
    expect(layout.result()).toEqual({ state: 'upgraded', to: 'v2', from: 'v1', digest: DIGEST, time: '2026-12-06T00:00:00.000Z' });
    expect(signals).toEqual([[4242, 'SIGUSR1']]);
    expect(layout.installed()).toEqual(['v1', 'v2']);
  });
});

describe('fleet upgrade target', () => {
  const fleet = testFleetKey();

  it('republishes the app this fleet key signed for the device, with the bundle at the new revision', () => {
    const signed = fleet.desired('pi-1', { revision: 4, services: { web: { image: 'x' } }, agent: { ref: 'old/agent:1', digest: `sha256:${'cd'.repeat(32)}` } });
    const apps = currentApps(view('pi-1', signed), ['pi-1'], fleet.key.publicKey);
    expect(JSON.parse(upgradeTarget(bundle, apps).body('pi-1', 5))).toEqual({ revision: 5, services: { web: { image: 'x' } }, agent: bundle });
    expect(JSON.parse(upgradeTarget(bundle, currentApps(new FleetView(), ['pi-2'], fleet.key.publicKey)).body('pi-2', 1))).toEqual({ revision: 1, services: {}, agent: bundle });
  });

  it('refuses to sign again what this key did not sign for that device', () => {
    const other = testFleetKey();
    const cases = [
      JSON.stringify({ revision: 4, services: {} }),
      other.desired('pi-1', { revision: 4, services: {} }),
      fleet.desired('pi-9', { revision: 4, services: {} }),
    ];
    for (const payload of cases) {
      expect(() => currentApps(view('pi-1', payload), ['pi-1'], fleet.key.publicKey)).toThrow(/pi-1: its retained desired state is not one this fleet key signed for it/);
    }
  });

  it('a device is done when its report says how this bundle\'s upgrade ended', () => {
    const t = upgradeTarget(bundle, new Map());
    expect(t.outcome(reported({ version: '0.1.0' }))).toBeUndefined();
    expect(t.outcome(reported({ version: '0.1.0', upgrade: { state: 'upgrading', digest: DIGEST } }))).toBeUndefined();
    expect(t.outcome(reported({ version: '0.2.0', upgrade: { state: 'upgraded', digest: DIGEST } }))).toBe('applied');
    expect(t.outcome(reported({ version: '0.1.0', upgrade: { state: 'rolled-back', digest: DIGEST, cause: 'exited' } }))).toBe('rolled-back');
    expect(t.outcome(reported({ version: '0.1.0', upgrade: { state: 'failed', digest: `sha256:${'00'.repeat(32)}` } }))).toBeUndefined();
    expect(t.outcome(reported({ version: '0.2.0', installed: `0.2.0-${'ab'.repeat(6)}` }))).toBe('applied');
    // Running the new version on trial is not done: it may still roll back.
    expect(t.outcome(reported({ version: '0.2.0', installed: `0.2.0-${'ab'.repeat(6)}`, upgrade: { state: 'upgrading', digest: DIGEST } }))).toBeUndefined();
    expect(t.outcome(reported({ version: '0.1.0' }, 'failed'))).toBe('failed');
  });
});
