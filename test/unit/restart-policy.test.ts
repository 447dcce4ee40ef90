import { describe, expect, it } from 'vitest';
import { backoffDelay, decideRestart, DEFAULT_BACKOFF } from '../../src/agent/restart-policy.js';
import { defaultRunOptions, parseRestart } from '../../src/runtime/options.js';
import type { ContainerRecord } from '../../src/runtime/records.js';

const exited = (restart: string, exitCode: number, more: Partial<ContainerRecord> = {}): ContainerRecord => ({
  id: 'x', name: 'x', image: 'i', imageDigest: 'd', runtime: 'runc', createdAt: 0, startedAt: 1000, finishedAt: 5000,
  state: 'exited', exitCode, oomKilled: false, restartCount: 0, stoppedByUser: false,
  options: { ...defaultRunOptions('x'), restart: parseRestart(restart) }, ...more,
});

describe('restart backoff', () => {
  it('is min(10 s · 2^n, 300 s)', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((n) => backoffDelay(n, DEFAULT_BACKOFF))).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });
});

describe('restart decisions (docker semantics)', () => {
  it.each([
    ['no', 1, {}, false],
    ['always', 0, {}, true],
    ['always', 1, { stoppedByUser: true }, false],
    ['unless-stopped', 0, {}, true],
    ['unless-stopped', 137, { stoppedByUser: true }, false],
    ['on-failure', 0, {}, false],
    ['on-failure', 1, {}, true],
    ['on-failure:2', 1, { restartCount: 1 }, true],
    ['on-failure:2', 1, { restartCount: 2 }, false],
    ['always', 1, { state: 'dead' as const }, true],
  ])('%s, exit %i, %j → restart %s', (policy, code, more, expected) => {
    expect(decideRestart(exited(policy, code, more), 0, DEFAULT_BACKOFF).restart).toBe(expected);
  });

  it('schedules the restart the backoff after the exit', () => {
    expect(decideRestart(exited('always', 1), 2, DEFAULT_BACKOFF)).toEqual({ restart: true, atMs: 5000 + 40_000, delayMs: 40_000 });
  });

  it('never restarts a running or created container', () => {
    expect(decideRestart(exited('always', 1, { state: 'running' }), 0, DEFAULT_BACKOFF).restart).toBe(false);
    expect(decideRestart(exited('always', 1, { state: 'created' }), 0, DEFAULT_BACKOFF).restart).toBe(false);
  });
});
