import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InstallLayout } from '../../src/agent/upgrade/layout.js';
import { AgentUpdates } from '../../src/agent/upgrade/updates.js';
import { Upgrader } from '../../src/agent/upgrade/upgrader.js';
import { upgradeTarget } from '../../src/fleet/upgrade.js';
import type { ReportedState } from '../../src/protocol/types.js';

// A bundle that failed its trial on a device is not tried again when the fleet sends the same digest
// (balena, IoT Edge: a rolled-back target waits for the target to change). The device keeps reporting
// the rollback for that digest, with the trial's cause and why it did not retry; another digest runs.

const BAD = `sha256:${'ab'.repeat(32)}`;
const OTHER = `sha256:${'cd'.repeat(32)}`;
const ROLLED_BACK = { state: 'rolled-back', to: '0.2.0-abababababab', from: 'v1', digest: BAD, cause: 'the new agent exited with status 3 before it confirmed', time: '2026-12-06T01:00:00.000Z' } as const;

function device(): { layout: InstallLayout; upgrader: Upgrader; fetched: string[]; events: string[] } {
  const layout = new InstallLayout(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-retry-')));
  fs.mkdirSync(path.join(layout.versions, 'v1'), { recursive: true });
  layout.ensure();
  layout.point('current', 'v1');
  layout.writeResult(ROLLED_BACK);
  const fetched: string[] = [];
  const events: string[] = [];
  const upgrader = new Upgrader({
    layout, platforms: [{ os: 'linux', architecture: 'arm64' }], freeBytes: () => 1e12, restart: () => undefined, log: (e) => events.push(e),
    // Reaching the registry is where a retry would begin; the test's registry refuses, which is enough to see it.
    client: (ref) => {
      fetched.push(ref);
      throw new Error('registry unreachable');
    },
  });
  return { layout, upgrader, fetched, events };
}

describe('the same bundle re-sent after its rollback', () => {
  it('is declined by the device without a download; its rollback result stays; another digest is tried', async () => {
    const { layout, upgrader, fetched } = device();
    const out = await upgrader.upgrade({ ref: 'r.example/berth/agent', digest: BAD }, new AbortController().signal);
    expect(out).toEqual({ kind: 'declined', rolledBack: ROLLED_BACK });
    expect(fetched).toEqual([]);
    expect(layout.result()).toEqual(ROLLED_BACK);
    expect(layout.linked('current')).toBe('v1');
    await expect(upgrader.upgrade({ ref: 'r.example/berth/agent', digest: OTHER }, new AbortController().signal)).rejects.toThrow(/registry unreachable/);
    expect(fetched).toEqual(['r.example/berth/agent']);
    expect(layout.result()).toMatchObject({ state: 'failed', digest: OTHER });
  });

  it('the report says rolled-back for that digest, with the trial\'s cause and why it was not retried, from the first report on', async () => {
    const { layout, upgrader, events } = device();
    let settle!: () => void;
    const settled = new Promise<void>((r) => (settle = r));
    let changed = 0;
    const updates = new AgentUpdates({
      context: { layout, running: 'v1', trialLauncher: undefined }, version: '0.1.0', upgrader, settled: () => settled,
      signal: new AbortController().signal, log: (e) => events.push(e), changed: () => void changed++,
    });
    expect(updates.report().upgrade?.cause).toBe(ROLLED_BACK.cause);
    updates.request({ ref: 'r.example/berth/agent', digest: BAD });
    // Before the deploy part has settled: the report of the new revision already explains.
    const expected = { state: 'rolled-back', digest: BAD, cause: `${ROLLED_BACK.cause}; not retried: this bundle was rolled back on this device at ${ROLLED_BACK.time} (push a new bundle to try again)` };
    expect(updates.report().upgrade).toMatchObject(expected);
    settle();
    await new Promise((r) => setTimeout(r, 10));
    expect(changed).toBe(1);
    expect(events).toContain('upgrade-not-retried');
    expect(updates.report()).toMatchObject({ version: '0.1.0', installed: 'v1', upgrade: expected });

    // The fleet's rollout ends it as rolled back and shows that cause.
    const t = upgradeTarget({ ref: 'r.example/berth/agent', digest: BAD }, new Map());
    const r: ReportedState = { revision: 2, status: 'applied', services: {}, agent: updates.report(), board: { profile: 'p', model: 'm' }, time: 't' };
    expect(t.outcome(r)).toBe('rolled-back');
    expect(t.error?.(r)).toBe(expected.cause);
    expect(upgradeTarget({ ref: 'r.example/berth/agent', digest: OTHER }, new Map()).error?.(r)).toBeUndefined();
  });
});
