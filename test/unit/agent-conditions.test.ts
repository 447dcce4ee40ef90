import { describe, expect, it } from 'vitest';
import { ConditionWatch } from '../../src/agent/conditions.js';
import type { TelemetrySample } from '../../src/agent/telemetry/index.js';
import { decodeThrottled } from '../../src/agent/telemetry/index.js';

const GiB = 1024 ** 3;
const sample = (o: { freeBytes?: number; throttled?: string; oom?: Record<string, number> } = {}): TelemetrySample => ({
  time: '2026-11-22T10:00:00.000Z',
  host: {
    disk: { path: '/var/lib/berth', totalBytes: 16 * GiB, freeBytes: o.freeBytes ?? 8 * GiB, totalInodes: 1000, freeInodes: 500 },
    ...(o.throttled !== undefined && { throttling: decodeThrottled(o.throttled)! }),
  },
  services: Object.fromEntries(Object.entries(o.oom ?? {}).map(([name, n]) => [name, { measured: true, state: 'running', restarts: 0, oomKills: n }])),
});

describe('ConditionWatch', () => {
  it('reports low disk once when it starts and once when it clears, with hysteresis', () => {
    const w = new ConditionWatch();
    expect(w.check(sample())).toEqual([]);
    // 10 % of 16 GiB = 1.6 GiB is the threshold (larger than 256 MiB).
    expect(w.check(sample({ freeBytes: 1.5 * GiB }))).toMatchObject([{ kind: 'low-disk', active: true, freeBytes: 1.5 * GiB }]);
    expect(w.check(sample({ freeBytes: 1.4 * GiB }))).toEqual([]);
    expect(w.check(sample({ freeBytes: 1.7 * GiB }))).toEqual([]); // above the threshold, below +20 %
    expect(w.check(sample({ freeBytes: 2 * GiB }))).toMatchObject([{ kind: 'low-disk', active: false }]);
  });

  it('on a small filesystem the 256 MiB floor decides', () => {
    const w = new ConditionWatch();
    const small = (free: number): TelemetrySample => ({ ...sample(), host: { disk: { path: '/', totalBytes: GiB, freeBytes: free, totalInodes: 1, freeInodes: 1 } } });
    expect(w.check(small(200 * 1024 ** 2))).toMatchObject([{ kind: 'low-disk', active: true }]);
  });

  it('reports under-voltage and throttling from the firmware bits for now, not since boot', () => {
    const w = new ConditionWatch();
    expect(w.check(sample({ throttled: '0x50000' }))).toEqual([]); // happened since boot only
    expect(w.check(sample({ throttled: '0x50005' }))).toMatchObject([
      { kind: 'under-voltage', active: true, raw: '0x50005' },
      { kind: 'throttled', active: true },
    ]);
    expect(w.check(sample({ throttled: '0x50004' }))).toMatchObject([{ kind: 'under-voltage', active: false }]);
    expect(w.check(sample({ throttled: '0x50000' }))).toMatchObject([{ kind: 'throttled', active: false }]);
  });

  it('reports OOM kills as the count rises, after a baseline, per service', () => {
    const w = new ConditionWatch();
    expect(w.check(sample({ oom: { web: 2, db: 0 } }))).toEqual([]);
    expect(w.check(sample({ oom: { web: 2, db: 0 } }))).toEqual([]);
    expect(w.check(sample({ oom: { web: 4, db: 1 } }))).toEqual([
      { kind: 'oom-kill', service: 'web', oomKills: 4, new: 2 },
      { kind: 'oom-kill', service: 'db', oomKills: 1, new: 1 },
    ]);
    // A redeploy's new container starts from 0: no event, a new baseline.
    expect(w.check(sample({ oom: { web: 0 } }))).toEqual([]);
    expect(w.check(sample({ oom: { web: 1 } }))).toMatchObject([{ service: 'web', new: 1 }]);
  });
});
