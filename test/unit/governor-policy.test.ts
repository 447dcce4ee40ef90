import { describe, expect, it } from 'vitest';
import { decide, DEFAULT_GOVERNOR, PressureWindow, type GovernedContainer, type GovernorMemory, type PressureReading } from '../../src/agent/governor/policy.js';

const cfg = { ...DEFAULT_GOVERNOR, settleMs: 3000, escalateAfterMs: 10_000, resumeAfterMs: 30_000 };
const MiB = 1024 * 1024;
const reading = (at: number, pressurePct: number): PressureReading => ({ at, pressurePct, avg10: pressurePct / 2, parentMemoryBytes: 300 * MiB, parentMemoryMax: 310 * MiB });
const c = (name: string, priority: GovernedContainer['priority'], memMiB: number, state: GovernedContainer['state'] = 'running', heldSince?: number): GovernedContainer => ({
  id: `id-${name}`, name, priority, state, memoryBytes: memMiB * MiB, ...(heldSince !== undefined && { heldSince }),
});

describe('governor policy', () => {
  it('freezes the largest best-effort container first, never critical or normal ones', () => {
    const all = [c('db', 'critical', 200), c('web', 'normal', 150), c('small', 'best-effort', 20), c('big', 'best-effort', 90)];
    const d = decide(reading(1000, 35), all, {}, cfg);
    expect(d.actions).toEqual([expect.objectContaining({ kind: 'freeze', name: 'big' })]);
    expect(d.actions[0]!.reason).toMatch(/memory pressure 35.0% ≥ 20%/);
    expect(d.memory.lastActionAt).toBe(1000);
  });

  it('waits settleMs between actions, then freezes the next one', () => {
    const all = [c('small', 'best-effort', 20), c('big', 'best-effort', 90, 'frozen', 1000)];
    expect(decide(reading(2000, 50), all, { lastActionAt: 1000 }, cfg).actions).toEqual([]);
    expect(decide(reading(4000, 50), all, { lastActionAt: 1000 }, cfg).actions).toEqual([expect.objectContaining({ kind: 'freeze', name: 'small' })]);
  });

  it('stops a frozen container only after escalateAfterMs of pressure with nothing left to freeze', () => {
    const all = [c('a', 'best-effort', 50, 'frozen', 0), c('b', 'best-effort', 80, 'frozen', 5000)];
    expect(decide(reading(9000, 40), all, { lastActionAt: 5000 }, cfg).actions).toEqual([]);
    const d = decide(reading(10_000, 40), all, { lastActionAt: 5000 }, cfg);
    expect(d.actions).toEqual([expect.objectContaining({ kind: 'stop', name: 'a' })]);
    expect(decide(reading(15_000, 40), all, { lastActionAt: 10_000 }, cfg).actions).toEqual([expect.objectContaining({ kind: 'stop', name: 'b' })]);
  });

  it('reports once when pressure is high and nothing can be shed', () => {
    const all = [c('db', 'critical', 200), c('web', 'normal', 100)];
    const d1 = decide(reading(1000, 60), all, {}, cfg);
    expect(d1.actions).toEqual([]);
    expect(d1.notes[0]).toMatch(/nothing left to shed/);
    expect(decide(reading(2000, 60), all, d1.memory, cfg).notes).toEqual([]);
  });

  it('holds between the thresholds and resets the calm clock', () => {
    const all = [c('a', 'best-effort', 50, 'frozen', 0)];
    const d = decide(reading(50_000, 10), all, { calmSince: 1000 }, cfg);
    expect(d.actions).toEqual([]);
    expect(d.memory.calmSince).toBeUndefined();
  });

  it('brings back one container per calm period: the smallest frozen first, then the stopped ones', () => {
    const all = [c('big', 'best-effort', 90, 'frozen', 0), c('small', 'best-effort', 20, 'frozen', 0), c('gone', 'best-effort', 0, 'stopped', 0)];
    let mem: GovernorMemory = {};
    mem = decide(reading(1000, 2), all, mem, cfg).memory;
    expect(mem.calmSince).toBe(1000);
    expect(decide(reading(20_000, 2), all, mem, cfg).actions).toEqual([]);
    const d = decide(reading(31_000, 2), all, mem, cfg);
    expect(d.actions).toEqual([expect.objectContaining({ kind: 'thaw', name: 'small' })]);
    expect(d.memory.calmSince).toBe(31_000);
    const onlyStopped = [c('gone', 'best-effort', 0, 'stopped', 0)];
    expect(decide(reading(62_000, 1), onlyStopped, d.memory, cfg).actions).toEqual([expect.objectContaining({ kind: 'restart', name: 'gone' })]);
  });
});

describe('PressureWindow', () => {
  it('turns PSI totals (µs) into a stall share over the window', () => {
    const w = new PressureWindow(5000);
    expect(w.add(0, 0)).toBe(0);
    expect(w.add(1000, 500_000)).toBeCloseTo(50);
    expect(w.add(2000, 500_000)).toBeCloseTo(25);
    for (let t = 3000; t <= 8000; t += 1000) w.add(t, 500_000);
    // The 500 ms stall at t=1 s has left the 5 s window.
    expect(w.add(9000, 500_000)).toBe(0);
    expect(w.add(10_000, 1_500_000)).toBeCloseTo(20, 0);
  });
});
