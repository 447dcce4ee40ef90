import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeThrottled, HostSampler, ServiceSampler, TelemetrySampler, type ServiceContainer } from '../../src/agent/telemetry/index.js';
import { fieldAfter } from '../../src/host/kernel-file.js';
import type { ContainerEngine } from '../../src/runtime/engine-api.js';
import { CgroupStatsReader } from '../../src/runtime/stats.js';
import type { ContainerRecord } from '../../src/runtime/records.js';
import { fixtureHost, variantHost } from '../helpers/host-tree.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));
const tmp = (prefix: string): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};
const variant = (base: string | undefined, files: Record<string, string | null>) => {
  const v = variantHost(base, files);
  cleanups.push(v.cleanup);
  return v;
};

const stat = (user: number, system: number, idle: number, iowait: number): string =>
  `cpu  ${user} 0 ${system} ${idle} ${iowait} 0 0 0 0 0\ncpu0 ${user} 0 ${system} ${idle} ${iowait} 0 0 0 0 0\nintr 1 2 3\n`;

describe('HostSampler on fixture boards', () => {
  it('reads a Raspberry Pi Zero 2 W: load, memory, uptime, temperature, throttling, network without lo, and disk of the state root', () => {
    const root = tmp('berth-telemetry-root-');
    const s = new HostSampler({ host: fixtureHost('rpi-zero-2-w'), stateRoot: root });
    const h = s.sample();
    expect(h.cpu).toBeUndefined(); // no previous sample to take a delta from
    expect(h.load).toEqual({ avg1: 0.42, avg5: 0.31, avg15: 0.22 });
    expect(h.memory).toEqual({ totalBytes: 425028 * 1024, availableBytes: 340022 * 1024, usedBytes: (425028 - 340022) * 1024 });
    expect(h.swap).toBeUndefined(); // this meminfo has no SwapTotal line: omitted, not 0
    expect(h.uptimeSeconds).toBe(4187.52);
    expect(h.temperatureC).toBe(47.2);
    const calm = { underVoltage: false, frequencyCapped: false, throttled: false, softTemperatureLimit: false };
    expect(h.throttling).toEqual({ raw: '0', now: calm, sinceBoot: calm });
    expect(h.network).toEqual({ wlan0: { rxBytes: 18734021, txBytes: 2311930 } });
    const fsStat = fs.statfsSync(root);
    expect(h.disk).toMatchObject({ path: root, totalBytes: fsStat.blocks * fsStat.bsize, totalInodes: fsStat.files });
    expect(h.disk!.freeBytes).toBeGreaterThan(0);
    expect(JSON.parse(JSON.stringify(h))).toEqual(h);
  });

  it('reads a Raspberry Pi 4B with two interfaces', () => {
    const h = new HostSampler({ host: fixtureHost('rpi-4b-4g'), stateRoot: tmp('berth-telemetry-root-') }).sample();
    expect(h.temperatureC).toBe(52.6);
    expect(h.network).toEqual({ eth0: { rxBytes: 734120931, txBytes: 51221904 }, wlan0: { rxBytes: 0, txBytes: 0 } });
  });

  it('decodes the under-voltage a Pi Zero W reports (get_throttled 50005: now and since boot)', () => {
    const h = new HostSampler({ host: fixtureHost('rpi-zero-w'), stateRoot: tmp('berth-telemetry-root-') }).sample();
    const flags = { underVoltage: true, frequencyCapped: false, throttled: true, softTemperatureLimit: false };
    expect(h.throttling).toEqual({ raw: '50005', now: flags, sinceBoot: flags });
  });

  it('omits what a board does not have: no thermal zone, no firmware, no /proc/net/dev, a missing state root', () => {
    const h = new HostSampler({ host: fixtureHost('unknown-arm64'), stateRoot: path.join(tmp('berth-telemetry-'), 'absent') }).sample();
    expect(Object.keys(h).sort()).toEqual(['memory']);
  });

  it('computes host CPU from /proc/stat deltas: busy = all but idle and iowait', () => {
    const v = variant('rpi-zero-2-w', { 'proc/stat': stat(100, 50, 800, 50) });
    const s = new HostSampler({ host: v.host, stateRoot: v.dir });
    expect(s.sample().cpu).toBeUndefined();
    fs.writeFileSync(path.join(v.dir, 'proc/stat'), stat(160, 90, 880, 70)); // +100 busy of +200
    expect(s.sample().cpu).toEqual({ percent: 50 });
    fs.writeFileSync(path.join(v.dir, 'proc/stat'), stat(160, 90, 880, 70)); // no jiffies passed: no share
    expect(s.sample().cpu).toBeUndefined();
  });

  it('takes the hottest thermal zone, skips cooling devices, and reads swap when meminfo has it', () => {
    const v = variant('rpi-zero-2-w', {
      'sys/class/thermal/thermal_zone1/temp': '61050\n',
      'sys/class/thermal/cooling_device0/cur_state': '3\n',
      'proc/meminfo': 'MemTotal:  1000 kB\nMemFree: 100 kB\nMemAvailable:  600 kB\nSwapTotal:  2048 kB\nSwapFree:   512 kB\n',
    });
    const h = new HostSampler({ host: v.host, stateRoot: v.dir }).sample();
    expect(h.temperatureC).toBe(61.1);
    expect(h.swap).toEqual({ totalBytes: 2048 * 1024, freeBytes: 512 * 1024, usedBytes: 1536 * 1024 });
    expect(h.memory?.usedBytes).toBe(400 * 1024);
  });

  it('decodes get_throttled bits like the doctor does, and rejects what is not hex', () => {
    expect(decodeThrottled('0x80008\n')).toMatchObject({ raw: '0x80008', now: { softTemperatureLimit: true, underVoltage: false }, sinceBoot: { softTemperatureLimit: true } });
    expect(decodeThrottled('0x20000')?.sinceBoot.frequencyCapped).toBe(true);
    expect(decodeThrottled('throttled')).toBeUndefined();
  });

  it('finds whole keys only', () => {
    const events = 'low 0\nhigh 2\nmax 7\noom_kill 3\noom 4\noom_group_kill 0\n';
    expect(fieldAfter(events, 'oom')).toBe(4);
    expect(fieldAfter(events, 'oom_kill')).toBe(3);
    expect(fieldAfter(events, 'low')).toBe(0);
    expect(fieldAfter(events, 'missing')).toBeUndefined();
    expect(fieldAfter('MemTotal:     425028 kB\n', 'MemTotal')).toBe(425028);
  });
});

/** A container record for the service sampler: only id, state and restartCount are read. */
const record = (id: string, state: ContainerRecord['state'], restartCount = 0): ContainerRecord => ({
  id, name: `c-${id}`, image: 'busybox', imageDigest: 'sha256:0', runtime: 'runc', createdAt: 0, state, restartCount,
  oomKilled: false, stoppedByUser: false, options: {} as ContainerRecord['options'],
});

/**
 * A cgroup v2 tree as plain files, `<dir>/berth/<id>/` with the interface files given, and the engine's
 * `stats` over it: the engine's own reader (runtime/stats.ts) on the directory of the container.
 */
function cgroupTree() {
  const root = tmp('berth-cgroup-');
  const dirOf = (id: string): string => path.join(root, 'berth', id);
  const write = (id: string, files: Record<string, string>): void => {
    fs.mkdirSync(dirOf(id), { recursive: true });
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dirOf(id), f), text);
  };
  const reader = new CgroupStatsReader();
  // The sampler passes the records it samples; this tree has no lookup by id.
  const engine: Pick<ContainerEngine, 'stats'> = {
    stats: (c) => {
      if (typeof c === 'string') throw new Error(`the sampler passes records, not ids (${c})`);
      return reader.read(c, dirOf(c.id));
    },
  };
  return { engine, write };
}

const cgroupFiles = (usageUsec: number, extra: Record<string, string> = {}): Record<string, string> => ({
  'cgroup.procs': '42\n',
  'cpu.stat': `usage_usec ${usageUsec}\nuser_usec ${usageUsec - 10}\nsystem_usec 10\nnr_periods 0\n`,
  'memory.current': '7340032\n',
  'memory.peak': '9437184\n',
  'memory.events': 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n',
  'pids.current': '3\n',
  'cgroup.events': 'populated 1\nfrozen 0\n',
  ...extra,
});

describe('ServiceSampler on a cgroup v2 tree', () => {
  it('reports memory, peak, OOM kills, pids and restarts; CPU from usage_usec deltas over the clock, as docker stats (100 = one core)', () => {
    const tree = cgroupTree();
    let now = 1000;
    const s = new ServiceSampler({ engine: tree.engine, now: () => now });
    tree.write('a1', cgroupFiles(2_000_000));
    const svc: ServiceContainer[] = [{ service: 'web', container: record('a1', 'running', 2) }];
    expect(s.sample(svc)).toEqual({
      web: { measured: true, state: 'running', restarts: 2, memoryCurrentBytes: 7340032, memoryPeakBytes: 9437184, oomKills: 1, pids: 3 },
    });
    now += 2000;
    tree.write('a1', cgroupFiles(5_000_000)); // 3 s of CPU in 2 s: one and a half cores
    expect(s.sample(svc).web?.cpuPercent).toBe(150);
  });

  it('gives no CPU share across a restart (the counter went back) and forgets containers no longer sampled', () => {
    const tree = cgroupTree();
    let now = 0;
    const s = new ServiceSampler({ engine: tree.engine, now: () => now });
    tree.write('b1', cgroupFiles(9_000_000));
    const svc: ServiceContainer[] = [{ service: 'db', container: record('b1', 'running') }];
    s.sample(svc);
    now += 1000;
    tree.write('b1', cgroupFiles(100_000));
    expect(s.sample(svc).db?.cpuPercent).toBeUndefined();
    now += 1000;
    s.sample([]);
    now += 1000;
    tree.write('b1', cgroupFiles(200_000));
    expect(s.sample(svc).db?.cpuPercent).toBeUndefined(); // the mark was forgotten with the empty sample
    now += 1000;
    tree.write('b1', cgroupFiles(900_000));
    const restarted = { ...record('b1', 'running', 1), startedAt: 5 }; // a new start, though the counter grew
    expect(s.sample([{ service: 'db', container: restarted }]).db?.cpuPercent).toBeUndefined();
  });

  it('does not try again, for a running container, the files its cgroup lacked', () => {
    const tree = cgroupTree();
    const files = cgroupFiles(1000);
    delete files['memory.peak'];
    tree.write('g1', files);
    const s = new ServiceSampler({ engine: tree.engine });
    const svc: ServiceContainer[] = [{ service: 'web', container: record('g1', 'running') }];
    expect(s.sample(svc).web).not.toHaveProperty('memoryPeakBytes');
    tree.write('g1', { 'memory.peak': '1\n' });
    expect(s.sample(svc).web).not.toHaveProperty('memoryPeakBytes');
  });

  it('leaves out memory.peak on kernels without it, and reports a frozen container as paused', () => {
    const tree = cgroupTree();
    const files = cgroupFiles(1000, { 'cgroup.events': 'populated 1\nfrozen 1\n' });
    delete files['memory.peak'];
    tree.write('c1', files);
    const r = new ServiceSampler({ engine: tree.engine }).sample([{ service: 'job', container: record('c1', 'running') }]).job!;
    expect(r).toMatchObject({ measured: true, state: 'paused' });
    expect(r).not.toHaveProperty('memoryPeakBytes');
  });

  it('on a hybrid host reads CPU alone from the unified hierarchy and says so', () => {
    const tree = cgroupTree();
    tree.write('f1', { 'cgroup.procs': '7\n', 'cpu.stat': 'usage_usec 5\n', 'cgroup.events': 'populated 1\nfrozen 0\n' });
    const r = new ServiceSampler({ engine: tree.engine }).sample([{ service: 'web', container: record('f1', 'running') }]);
    expect(r.web).toEqual({ measured: true, state: 'running', restarts: 0, note: expect.stringContaining('CPU only') });
  });

  it('measures nothing without a v2 cgroup (v1-only host) or when not running, and says why', () => {
    const tree = cgroupTree();
    const r = new ServiceSampler({ engine: tree.engine }).sample([
      { service: 'gone', container: record('d1', 'running') },
      { service: 'done', container: record('d2', 'exited', 4) },
    ]);
    expect(r.gone).toEqual({ measured: false, state: 'running', restarts: 0, note: expect.stringContaining('no cgroup v2 directory') });
    expect(r.done).toEqual({ measured: false, state: 'exited', restarts: 4, note: 'not running' });
  });
});

describe('TelemetrySampler', () => {
  it('combines host and services into one JSON-ready sample with the time, and reports its own CPU time', () => {
    const tree = cgroupTree();
    tree.write('e1', cgroupFiles(1000));
    const t = new TelemetrySampler({ host: fixtureHost('rpi-zero-2-w'), stateRoot: tmp('berth-telemetry-root-'), engine: tree.engine, clock: () => Date.UTC(2026, 10, 22, 12, 0, 0) });
    expect(t.lastSampleCpuUs()).toBeUndefined();
    const sample = t.sample([{ service: 'web', container: record('e1', 'running') }]);
    expect(sample.time).toBe('2026-11-22T12:00:00.000Z');
    expect(sample.host.load?.avg1).toBe(0.42);
    expect(sample.services.web?.measured).toBe(true);
    expect(JSON.parse(JSON.stringify(sample))).toEqual(sample);
    expect(t.lastSampleCpuUs()).toBeGreaterThanOrEqual(0);
  });
});
