// The pressure governor over the engine double, with PSI and cgroup files as a fixture tree: the
// executor part of the governor (reading, looking at containers, freezing through the engine); the
// rules themselves are in governor-policy.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { PressureGovernor, type GovernorEvent } from '../../src/agent/governor/governor.js';
import { PRIORITY_LABEL } from '../../src/cgroup/priority.js';
import type { ContainerStats } from '../../src/runtime/engine-api.js';
import { defaultRunOptions } from '../../src/runtime/options.js';
import { EngineDouble } from '../helpers/engine-double.js';

const MiB = 1024 * 1024;
const SERVICE = ['sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"];
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** The engine double, counting the container reads the governor makes. */
class CountingEngine extends EngineDouble {
  statsReads = 0;
  override stats(nameOrId: string): ContainerStats {
    this.statsReads++;
    return super.stats(nameOrId);
  }
}

const psi = (totalUs: number): string => `some avg10=0.00 avg60=0.00 avg300=0.00 total=${totalUs}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`;

async function rig() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-governor-'));
  dirs.push(dir);
  const engine = new CountingEngine({ dir });
  engine.ensureParentCgroup();
  const parentPsi = (us: number): void => fs.writeFileSync(path.join(dir, 'cgroup/berth/memory.pressure'), psi(us));
  const procRoot = path.join(dir, 'proc');
  fs.mkdirSync(path.join(procRoot, 'pressure'), { recursive: true });
  fs.writeFileSync(path.join(procRoot, 'pressure/memory'), psi(0));
  parentPsi(0);
  const start = async (name: string, priority: string, memoryBytes: number) => {
    const c = await engine.start(engine.create('app:1', { ...defaultRunOptions(name), cmd: SERVICE, labels: { [PRIORITY_LABEL]: priority } }).id);
    fs.writeFileSync(path.join(engine.cgroupDir(c.id), 'memory.current'), `${memoryBytes}\n`);
    return c;
  };
  let now = 0;
  const events: GovernorEvent[] = [];
  const governor = new PressureGovernor(engine, { procRoot, onEvent: (e) => events.push(e), clock: () => now });
  const tickAt = async (at: number): Promise<void> => {
    now = at;
    await governor.tick();
  };
  return { engine, governor, events, start, parentPsi, tickAt, procRoot };
}

describe('PressureGovernor over the engine', () => {
  it('freezes the largest best-effort container through the engine when the parent cgroup stalls', async () => {
    const r = await rig();
    const small = await r.start('small', 'best-effort', 20 * MiB);
    const big = await r.start('big', 'best-effort', 90 * MiB);
    const db = await r.start('db', 'critical', 200 * MiB);
    await r.tickAt(1000);
    r.parentPsi(400_000); // 0.4 s stalled in 1 s: 40 %
    await r.tickAt(2000);
    expect(r.events.filter((e) => e.type === 'governor-freeze').map((e) => e.container)).toEqual(['big']);
    expect(r.engine.stats(big.id).frozen).toBe(true);
    expect(r.engine.stats(small.id).frozen).toBe(false);
    expect(r.engine.stats(db.id).frozen).toBe(false);
    expect(r.engine.inspect(big.id)).toMatchObject({ State: { Status: 'paused' } });
  });

  it('reads no container while calm with nothing held and nothing changed, and again once the engine reports a change', async () => {
    const r = await rig();
    await r.start('web', 'best-effort', 10 * MiB);
    const events: GovernorEvent[] = [];
    const governor = new PressureGovernor(r.engine, { procRoot: r.procRoot, config: { intervalMs: 10 }, onEvent: (e) => events.push(e) });
    const abort = new AbortController();
    const running = governor.run(abort.signal);
    try {
      await sleep(150); // about fifteen samples
      expect(r.engine.statsReads).toBe(1);
      await r.start('other', 'normal', 10 * MiB);
      await sleep(100);
      expect(r.engine.statsReads).toBe(3);
      expect(events.filter((e) => e.type !== 'governor-pressure')).toEqual([]);
    } finally {
      abort.abort();
      await running;
    }
  });
});
