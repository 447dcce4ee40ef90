import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CgroupStatsReader } from '../../src/runtime/stats.js';
import type { ContainerRecord } from '../../src/runtime/records.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A container's cgroup v2 directory as plain files, and a running container whose cgroup it is. */
function rig(files: Record<string, string>): { dir: string; c: ContainerRecord } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-stats-'));
  dirs.push(dir);
  for (const [f, v] of Object.entries({ 'cgroup.procs': '42\n', ...files })) fs.writeFileSync(path.join(dir, f), v);
  return { dir, c: { id: 'abc', name: 'web', state: 'running', startedAt: 1 } as ContainerRecord };
}

describe('CgroupStatsReader (berth stats, inspect, telemetry) from cgroup v2 files', () => {
  it('reads cpu, memory current/peak/limit, OOM kills, pids and the frozen bit', () => {
    const { dir, c } = rig({
      'cpu.stat': 'usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n', 'memory.current': '4096\n', 'memory.peak': '8192\n',
      'memory.max': '67108864\n', 'pids.current': '3\n', 'memory.events': 'low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n', 'cgroup.events': 'populated 1\nfrozen 1\n',
    });
    expect(new CgroupStatsReader().read(c, dir)).toEqual({
      name: 'web', id: 'abc', measured: true, source: 'v2', cpuUsageUsec: 123456, memoryCurrent: 4096, memoryPeak: 8192, memoryLimit: 67108864, oomKills: 1, pids: 3, frozen: true,
    });
  });

  it('an unlimited container reads max; a kernel without memory.peak leaves it out', () => {
    const { dir, c } = rig({ 'cpu.stat': 'usage_usec 1\n', 'memory.current': '4096\n', 'memory.max': 'max\n', 'pids.current': '1\n' });
    const s = new CgroupStatsReader().read(c, dir);
    expect(s.memoryLimit).toBe('max');
    expect('memoryPeak' in s).toBe(false);
  });

  it('falls back to the v1 files on a hybrid host, keeping the v2 CPU counter', () => {
    const { dir, c } = rig({ 'cpu.stat': 'usage_usec 77\n' });
    const v1 = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-stats-v1-'));
    dirs.push(v1);
    const put = (ctrl: string, file: string, v: string): void => {
      fs.mkdirSync(path.join(v1, ctrl, 'berth', c.id), { recursive: true });
      fs.writeFileSync(path.join(v1, ctrl, 'berth', c.id, file), v);
    };
    put('memory', 'memory.usage_in_bytes', '5000\n');
    put('pids', 'pids.current', '2\n');
    expect(new CgroupStatsReader().read(c, dir, v1)).toMatchObject({ measured: true, source: 'v1', cpuUsageUsec: 77, memoryCurrent: 5000, memoryLimit: 'max', pids: 2 });
    // Without v1 files the unified directory's CPU is all there is, and it says so.
    expect(new CgroupStatsReader().read(c, dir)).toEqual({ name: 'web', id: 'abc', measured: true, source: 'v2', cpuUsageUsec: 77, note: expect.stringContaining('CPU only') });
  });

  it('measures nothing for a stopped container or a missing cgroup, and says why', () => {
    const r = new CgroupStatsReader();
    expect(r.read({ id: 'x', name: 'done', state: 'exited' } as ContainerRecord, '/nonexistent')).toEqual({ name: 'done', id: 'x', measured: false, note: 'not running' });
    expect(r.read({ id: 'y', name: 'gone', state: 'running' } as ContainerRecord, '/nonexistent/berth-cg')).toMatchObject({ measured: false, note: expect.stringContaining('no cgroup v2 directory') });
  });
});
