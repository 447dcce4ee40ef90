import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { ensureParent } from '../../src/cgroup/parent.js';
import { PRIORITY_POLICIES, priorityOf } from '../../src/cgroup/priority.js';
import { cgroupV2Files, toLinuxResources, type ContainerDefaults } from '../../src/cgroup/resources.js';
import { Cgroup, parseKeyed, parsePressure } from '../../src/cgroup/v2.js';

const MiB = 1024 * 1024;
const defaults: ContainerDefaults = { memoryHighBytes: 100 * MiB, memoryMaxBytes: 128 * MiB, pidsLimit: 256, cpuWeight: 100 };
const tmps: string[] = [];
const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cg-'));
  tmps.push(d);
  return d;
};
afterEach(() => tmps.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('cgroup v2 files', () => {
  it('parses PSI lines, with and without full', () => {
    const p = parsePressure('some avg10=12.50 avg60=3.01 avg300=0.00 total=123456\nfull avg10=1.00 avg60=0.50 avg300=0.10 total=999\n');
    expect(p).toEqual({ some: { avg10: 12.5, avg60: 3.01, avg300: 0, totalUs: 123456 }, full: { avg10: 1, avg60: 0.5, avg300: 0.1, totalUs: 999 } });
    expect(parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=0')?.full).toBeUndefined();
    expect(parsePressure('garbage')).toBeUndefined();
    expect(parsePressure('')).toBeUndefined();
  });

  it('parses keyed files and ignores junk lines', () => {
    expect(parseKeyed('low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\nbogus\nx y\n')).toEqual({ low: 0, high: 12, max: 3, oom: 1, oom_kill: 1 });
  });

  it('reads numbers, max and missing files; freezes through cgroup.freeze', () => {
    const cg = new Cgroup(tmp());
    fs.writeFileSync(path.join(cg.dir, 'memory.current'), '4096\n');
    fs.writeFileSync(path.join(cg.dir, 'memory.max'), 'max\n');
    fs.writeFileSync(path.join(cg.dir, 'cgroup.events'), 'populated 1\nfrozen 0\n');
    expect(cg.number('memory.current')).toBe(4096);
    expect(cg.number('memory.max')).toBe(Infinity);
    expect(cg.number('memory.peak')).toBeUndefined();
    expect(cg.frozen()).toBe(false);
    cg.setFrozen(true);
    expect(fs.readFileSync(path.join(cg.dir, 'cgroup.freeze'), 'utf8')).toBe('1');
    expect(() => new Cgroup(path.join(cg.dir, 'gone')).write('cgroup.freeze', '1')).toThrow(BerthError);
  });
});

describe('berth parent cgroup', () => {
  it('creates berth/, delegates the controllers the root offers, sets the budget; idempotent', () => {
    const root = tmp();
    fs.writeFileSync(path.join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
    // A plain directory stands in for cgroupfs: writes of "+ctl" replace the file instead of adding to it.
    fs.mkdirSync(path.join(root, 'berth'));
    fs.writeFileSync(path.join(root, 'berth', 'memory.max'), 'max\n');
    const a = ensureParent(root, { memoryMaxBytes: 300 * MiB });
    expect(fs.readFileSync(path.join(root, 'berth', 'memory.max'), 'utf8')).toBe(String(300 * MiB));
    expect(a.applied['memory.max']).toBe(String(300 * MiB));
    expect(a.cgroup.dir).toBe(path.join(root, 'berth'));
    ensureParent(root, { memoryMaxBytes: 0 });
    expect(fs.readFileSync(path.join(root, 'berth', 'memory.max'), 'utf8')).toBe('max');
  });
});

describe('priority classes', () => {
  it('reads berth.priority; unlabelled is normal; a typo is a clear error', () => {
    expect(priorityOf({})).toBe('normal');
    expect(priorityOf({ 'berth.priority': 'critical' })).toBe('critical');
    expect(priorityOf({ 'berth.priority': 'best-effort' })).toBe('best-effort');
    expect(() => priorityOf({ 'berth.priority': 'high' })).toThrow(/not a priority class: use critical, normal, best-effort/);
  });

  it('critical protects its allowance and weighs 4×; best-effort weighs a tenth; explicit flags win', () => {
    const crit = cgroupV2Files(toLinuxResources({}, defaults, 'critical'));
    expect(crit['memory.low']).toBe(String(100 * MiB));
    expect(crit['cpu.weight']).toBe('400');
    expect(cgroupV2Files(toLinuxResources({ memory: 64 * MiB }, defaults, 'critical'))['memory.low']).toBe(String(64 * MiB));
    expect(cgroupV2Files(toLinuxResources({ memory: 64 * MiB, memoryReservation: 16 * MiB }, defaults, 'critical'))['memory.low']).toBe(String(16 * MiB));
    const be = cgroupV2Files(toLinuxResources({}, defaults, 'best-effort'));
    expect(be['cpu.weight']).toBe('10');
    expect(be['memory.low']).toBeUndefined();
    expect(cgroupV2Files(toLinuxResources({ cpuShares: 1024 }, defaults, 'best-effort'))['cpu.weight']).toBe('100');
    expect(cgroupV2Files(toLinuxResources({}, defaults, 'normal'))['cpu.weight']).toBe('100');
  });

  it('orders the OOM killer: best-effort first, critical last', () => {
    expect(PRIORITY_POLICIES['best-effort'].oomScoreAdj).toBeGreaterThan(PRIORITY_POLICIES.normal.oomScoreAdj);
    expect(PRIORITY_POLICIES.critical.oomScoreAdj).toBeLessThan(PRIORITY_POLICIES.normal.oomScoreAdj);
  });
});
