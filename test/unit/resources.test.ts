import { describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { cgroupV2Files, cpuSharesToWeight, toLinuxResources, type ContainerDefaults } from '../../src/cgroup/resources.js';

const MiB = 1024 * 1024;
const defaults: ContainerDefaults = { memoryHighBytes: 200 * MiB, memoryMaxBytes: 256 * MiB, pidsLimit: 512, cpuWeight: 100 };
const none: ContainerDefaults = { memoryHighBytes: 0, memoryMaxBytes: 0, pidsLimit: 0, cpuWeight: 0 };

describe('cpuSharesToWeight (runc/crun conversion)', () => {
  it.each([
    [1024, 100], [2, 1], [262144, 10000], [512, 59], [2048, 174], [4096, 303], [100, 17], [3, 2], [0, 0], [1, 1], [500000, 10000],
  ])('%i shares → weight %i', (shares, weight) => {
    expect(cpuSharesToWeight(shares)).toBe(weight);
  });
  it('is monotonic across the whole range', () => {
    let prev = 0;
    for (let s = 2; s <= 262144; s = Math.ceil(s * 1.1)) {
      const w = cpuSharesToWeight(s);
      expect(w).toBeGreaterThanOrEqual(prev);
      prev = w;
    }
  });
});

describe('toLinuxResources', () => {
  it('explicit memory: memory.max, swap off (swap = limit), no memory.high, oom group', () => {
    const r = toLinuxResources({ memory: 64 * MiB }, defaults);
    expect(r.memory).toEqual({ limit: 64 * MiB, swap: 64 * MiB });
    expect(r.unified).toEqual({ 'memory.oom.group': '1', 'cpu.weight': '100' });
    expect(cgroupV2Files(r)).toMatchObject({ 'memory.max': String(64 * MiB), 'memory.swap.max': '0', 'pids.max': '512', 'memory.oom.group': '1' });
  });
  it('no memory given: the profile limit and memory.high from the profile', () => {
    const r = toLinuxResources({}, defaults);
    expect(r.memory).toEqual({ limit: 256 * MiB, swap: 256 * MiB });
    expect(r.unified?.['memory.high']).toBe(String(200 * MiB));
    expect(r.pids).toEqual({ limit: 512 });
    const f = cgroupV2Files(r);
    expect(f['memory.high']).toBe(String(200 * MiB));
    expect(f['memory.max']).toBe(String(256 * MiB));
    expect(f['cpu.weight']).toBe('100');
  });
  it('swap semantics: memory+swap total, -1 unlimited, equal → none', () => {
    expect(cgroupV2Files(toLinuxResources({ memory: 64 * MiB, memorySwap: 192 * MiB }, none))['memory.swap.max']).toBe(String(128 * MiB));
    expect(toLinuxResources({ memory: 64 * MiB, memorySwap: 192 * MiB }, none).memory?.swap).toBe(192 * MiB);
    expect(cgroupV2Files(toLinuxResources({ memory: 64 * MiB, memorySwap: -1 }, none))['memory.swap.max']).toBe('max');
    expect(cgroupV2Files(toLinuxResources({ memory: 64 * MiB, memorySwap: 64 * MiB }, none))['memory.swap.max']).toBe('0');
    expect(cgroupV2Files(toLinuxResources({ memorySwap: -1 }, none))['memory.swap.max']).toBe('max');
    expect(() => toLinuxResources({ memory: 64 * MiB, memorySwap: 32 * MiB }, none)).toThrow(/at least --memory/);
    expect(() => toLinuxResources({ memorySwap: 32 * MiB }, none)).toThrow(/needs --memory/);
  });
  it('reservation → memory.low, not above the limit', () => {
    expect(cgroupV2Files(toLinuxResources({ memory: 64 * MiB, memoryReservation: 32 * MiB }, none))['memory.low']).toBe(String(32 * MiB));
    const err = (() => { try { toLinuxResources({ memory: 64 * MiB, memoryReservation: 65 * MiB }, none); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).category).toBe('invalid');
  });
  it.each([
    [0.5, '50000 100000'], [1, '100000 100000'], [1.5, '150000 100000'], [0.01, '1000 100000'], [2.333333, '233333 100000'], [0.123456, '12346 100000'],
  ])('cpus %f → cpu.max "%s"', (cpus, max) => {
    const r = toLinuxResources({ cpus }, none);
    expect(cgroupV2Files(r)['cpu.max']).toBe(max);
    expect(r.cpu?.period).toBe(100000);
  });
  it('cpu shares go to the spec (the runtime converts), no default weight then', () => {
    const r = toLinuxResources({ cpuShares: 512 }, defaults);
    expect(r.cpu).toEqual({ shares: 512 });
    expect(r.unified?.['cpu.weight']).toBeUndefined();
    expect(cgroupV2Files(r)['cpu.weight']).toBe('59');
    expect(() => toLinuxResources({ cpuShares: 1 }, none)).toThrow(/2…262144/);
    expect(() => toLinuxResources({ cpus: 0.001 }, none)).toThrow(/at least 0.01/);
  });
  it('pids: -1 and 0 mean max; the profile default otherwise', () => {
    expect(cgroupV2Files(toLinuxResources({ pidsLimit: -1 }, defaults))['pids.max']).toBe('max');
    expect(cgroupV2Files(toLinuxResources({ pidsLimit: 0 }, defaults))['pids.max']).toBe('max');
    expect(cgroupV2Files(toLinuxResources({ pidsLimit: 100 }, defaults))['pids.max']).toBe('100');
    expect(cgroupV2Files(toLinuxResources({}, none))['pids.max']).toBe('max');
  });
  it('cgroupV2Files: unified overrides, order as runc writes them', () => {
    const f = cgroupV2Files({ memory: { limit: 100, swap: 300, reservation: 50 }, cpu: { shares: 1024, quota: 5000, period: 10000 }, pids: { limit: 7 }, unified: { 'cpu.weight': '5', 'memory.high': '90' } });
    expect(f).toEqual({ 'memory.max': '100', 'memory.low': '50', 'memory.swap.max': '200', 'cpu.weight': '5', 'cpu.max': '5000 10000', 'pids.max': '7', 'memory.high': '90' });
    expect(Object.keys(f)).toEqual(['memory.max', 'memory.low', 'memory.swap.max', 'cpu.weight', 'cpu.max', 'pids.max', 'memory.high']);
    expect(cgroupV2Files({ memory: { limit: -1 } })).toEqual({ 'memory.max': 'max' });
    expect(cgroupV2Files({})).toEqual({});
  });
});
