import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ContainerEngine } from '../../src/runtime/engine.js';
import { containerStats } from '../../src/runtime/inspect.js';
import type { ContainerRecord } from '../../src/runtime/records.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A container's cgroup v2 directory as plain files, and just enough engine to find it. */
function rig(files: Record<string, string>): { engine: ContainerEngine; c: ContainerRecord } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-stats-'));
  dirs.push(dir);
  for (const [f, v] of Object.entries({ 'cgroup.procs': '42\n', ...files })) fs.writeFileSync(path.join(dir, f), v);
  const engine = { cgroupDir: () => dir } as unknown as ContainerEngine;
  return { engine, c: { id: 'abc', name: 'web', state: 'running' } as ContainerRecord };
}

describe('containerStats from cgroup v2 files', () => {
  it('reads cpu, memory current/peak/limit and pids', () => {
    const { engine, c } = rig({
      'cpu.stat': 'usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n', 'memory.current': '4096\n', 'memory.peak': '8192\n',
      'memory.max': '67108864\n', 'pids.current': '3\n',
    });
    expect(containerStats(engine, c)).toEqual({ name: 'web', id: 'abc', measured: true, cpuUsageUsec: 123456, memoryCurrent: 4096, memoryPeak: 8192, memoryLimit: 67108864, pids: 3 });
  });

  it('an unlimited container reads max; a kernel without memory.peak leaves it out', () => {
    const { engine, c } = rig({ 'cpu.stat': 'usage_usec 1\n', 'memory.current': '4096\n', 'memory.max': 'max\n', 'pids.current': '1\n' });
    const s = containerStats(engine, c);
    expect(s.memoryLimit).toBe('max');
    expect('memoryPeak' in s).toBe(false);
  });
});
