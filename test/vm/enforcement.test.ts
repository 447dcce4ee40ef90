import { beforeAll, describe, expect, it } from 'vitest';
import { runGuestSuite } from '../helpers/vm/suite.js';

// cgroup v2 enforcement on a real kernel: the CI machine's hybrid layout cannot enforce limits, so the
// suite boots Debian's kernel under qemu TCG with a pure cgroup2 mount, runs test/vm/guest/enforcement.ts
// there against a registry inside the VM, and asserts here on what it recorded.

const MiB = 1024 * 1024;
let r: Record<string, any> = {};

beforeAll(async () => {
  ({ results: r } = await runGuestSuite('enforcement'));
}, 300_000);

describe('cgroup v2 enforcement in a VM', () => {
  it('boots a pure cgroup v2 guest and completes the guest suite', () => {
    expect(r.error).toBeUndefined();
    expect(r.completed).toBe(true);
    expect(r.board.profile).toBe('vm-rpi-zero-2-w');
  });

  it('caps all containers together with the parent cgroup (RAM − reserve), swap off', () => {
    expect(Number(r.parent.memoryMax)).toBe(r.board.containerBudgetBytes);
    expect(r.parent.subtreeControl).toMatch(/memory/);
    expect(r.parent.subtreeControl).toMatch(/cpu/);
    expect(r.parent.neighbourSwapMax).toBe('0');
    expect(r.parent.neighbourOomScoreAdj).toBe('0');
  });

  it('--memory: OOM-kills the container, inspect says OOMKilled and 137, the neighbour lives', () => {
    expect(r.oom.runExit).toBe(137);
    expect(r.oom.state.OOMKilled).toBe(true);
    expect(r.oom.state.ExitCode).toBe(137);
    expect(r.oom.cgroupFiles['memory.max']).toBe(String(32 * MiB));
    expect(r.oom.neighbour).toBe('running');
  });

  it('memory.high throttles without killing', () => {
    expect(Number(r.high.files.high)).toBe(r.board.containerDefaults.memoryHighBytes);
    expect(r.high.events.high).toBeGreaterThan(0);
    expect(r.high.events.oom_kill ?? 0).toBe(0);
    expect(r.high.state.Status).toBe('running');
    expect(r.high.current).toBeLessThan(r.board.containerDefaults.memoryMaxBytes);
  });

  it('--cpus 0.25 holds a busy loop to about a quarter of a core', () => {
    expect(r.cpu.cpuMax).toBe('25000 100000');
    expect(r.cpu.share).toBeGreaterThan(0.15);
    expect(r.cpu.share).toBeLessThan(0.32);
    expect(r.cpu.throttled).toBeGreaterThan(0);
  });

  it('--pids-limit makes fork fail inside', () => {
    expect(r.pids.pidsMax).toBe('8');
    expect(r.pids.output).toMatch(/can't fork|Resource temporarily unavailable/);
  });

  it('the parent budget OOM-kills inside berth only, best-effort first', () => {
    expect(r.parentCap.parentEvents.oom_kill).toBeGreaterThan(0);
    expect(r.parentCap.greedy.OOMKilled).toBe(true);
    expect(r.parentCap.steady.Status).toBe('running');
    expect(r.parentCap.neighbour).toBe('running');
    // Only memory-cgroup OOM kills: the global OOM killer never ran.
    const global = (r.parentCap.kernel as string[]).filter((l) => /Out of memory: Killed/.test(l) && !/Memory cgroup/.test(l));
    expect(global).toEqual([]);
  });
});
