import { describe, expect, it } from 'vitest';
import { Rollout, parseRate } from '../../src/fleet/rollout.js';

const devices = (n: number) => Array.from({ length: n }, (_, i) => `d${i}`);

describe('Rollout planner', () => {
  it('without a rate sends every device at once', () => {
    const r = new Rollout(devices(5));
    expect(r.due(0)).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
    expect(r.due(1)).toEqual([]);
    expect(r.nextDueIn(1)).toBeUndefined();
  });

  it('paces N per minute from the first send, with no burst', () => {
    const r = new Rollout(devices(5), { ratePerMin: 30 }); // one every 2 s
    expect(r.due(1000)).toEqual(['d0']);
    expect(r.nextDueIn(1000)).toBe(2000);
    expect(r.due(2999)).toEqual([]);
    expect(r.due(3000)).toEqual(['d1']);
    // Late ticks catch up to the schedule, never ahead of it.
    expect(r.due(8000)).toEqual(['d2', 'd3']);
    expect(r.nextDueIn(8000)).toBe(1000);
    expect(r.due(9000)).toEqual(['d4']);
    expect(r.nextDueIn(9000)).toBeUndefined();
  });

  it('completes when every sent device has a result', () => {
    const r = new Rollout(devices(2));
    r.due(0);
    expect(r.complete).toBe(false);
    r.finish('d0', 'applied');
    r.finish('d0', 'failed'); // the first result counts
    expect(r.result('d0')).toBe('applied');
    expect([...r.inFlight()]).toEqual(['d1']);
    r.finish('d1', 'applied');
    expect(r.complete).toBe(true);
    expect(r.counts()).toEqual({ total: 2, sent: 2, finished: 2, applied: 2, failures: 0 });
  });

  it('ignores results for devices it never sent', () => {
    const r = new Rollout(devices(3), { ratePerMin: 1 });
    r.due(0);
    r.finish('d2', 'failed');
    expect(r.result('d2')).toBeUndefined();
  });

  it('a device overtaken by a newer deploy is finished but not a failure', () => {
    const r = new Rollout(devices(2), { abortAfterPct: 1 });
    r.due(0);
    r.finish('d0', 'superseded');
    expect(r.aborted).toBeUndefined();
    expect(r.counts()).toMatchObject({ finished: 1, applied: 0, failures: 0 });
  });

  it('aborts once failures reach the threshold after the minimum number of finished devices', () => {
    const r = new Rollout(devices(10), { ratePerMin: 60, abortAfterPct: 50, minDevices: 3 });
    expect(r.due(0)).toEqual(['d0']);
    r.finish('d0', 'rolled-back'); // 100 % but only 1 finished
    expect(r.aborted).toBeUndefined();
    expect(r.due(1000)).toEqual(['d1']);
    r.finish('d1', 'applied');
    expect(r.due(2000)).toEqual(['d2']);
    r.finish('d2', 'applied'); // 1 of 3 = 33 %
    expect(r.aborted).toBeUndefined();
    expect(r.due(3000)).toEqual(['d3']);
    expect(r.due(4000)).toEqual(['d4']);
    r.finish('d3', 'failed'); // 2 of 4 = 50 %
    expect(r.aborted).toMatch(/2 of 4 finished devices failed \(50 % ≥ 50 %\)/);
    expect(r.due(10_000)).toEqual([]);
    expect(r.nextDueIn(10_000)).toBeUndefined();
    expect(r.unsent()).toEqual(['d5', 'd6', 'd7', 'd8', 'd9']);
    // d4 was sent before the abort: still followed.
    expect(r.complete).toBe(false);
    r.finish('d4', 'rejected');
    expect(r.complete).toBe(true);
    expect(r.counts()).toMatchObject({ total: 10, sent: 5, finished: 5, failures: 3 });
  });

  it('refuses nonsense policies', () => {
    expect(() => new Rollout([], { ratePerMin: 0 })).toThrow(RangeError);
    expect(() => new Rollout([], { abortAfterPct: 0 })).toThrow(RangeError);
    expect(() => new Rollout([], { abortAfterPct: 101 })).toThrow(RangeError);
  });
});

describe('--rate', () => {
  it('takes per-minute, per-second and per-hour rates', () => {
    expect(parseRate('10/min')).toBe(10);
    expect(parseRate('10')).toBe(10);
    expect(parseRate('2/s')).toBe(120);
    expect(parseRate('120/h')).toBe(2);
    for (const bad of ['0', '-1/min', 'fast', '10/day', '']) expect(() => parseRate(bad)).toThrow(/--rate/);
  });
});
