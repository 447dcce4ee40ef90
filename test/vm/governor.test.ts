import { beforeAll, describe, expect, it } from 'vitest';
import { runGuestSuite } from '../helpers/vm/suite.js';

// The small-RAM promise, proven on a real cgroup v2 kernel: a 512 MiB VM with the Zero 2 W's memory
// policy, `berth agent` governing, one critical service and two best-effort memory hogs
// (test/vm/guest/governor.ts). The least important containers lose first; the critical one, the agent
// and the VM never do.

let r: Record<string, any> = {};
type Ev = { t: number; event: string; container?: string; [k: string]: unknown };
let gov: Ev[] = [];

beforeAll(async () => {
  ({ results: r } = await runGuestSuite('governor'));
  gov = ((r.events ?? []) as Ev[]).filter((e) => /^governor-(freeze|stop|thaw|restart)$/.test(e.event));
}, 300_000);

/** First timeline time (guest ms) after `t` at which `pred` holds for container `name`. */
function firstSeenAfter(t: number, name: string, pred: (s: { current?: number }) => boolean): number | undefined {
  return (r.timeline as Array<Record<string, any>>).find((row) => row.t > t && pred(row[name] ?? {}))?.t;
}

/** First timeline time (guest ms) at which `pred` holds for container `name`. */
function firstSeen(name: string, pred: (s: { high?: number; oomKill?: number; frozen?: number }) => boolean): number | undefined {
  return (r.timeline as Array<Record<string, any>>).find((row) => pred(row[name] ?? {}))?.t;
}

describe('pressure governor on a 512 MiB board (VM)', () => {
  it('runs the scenario with the governor on, under the Zero 2 W budget', () => {
    expect(r.error).toBeUndefined();
    expect(r.completed).toBe(true);
    expect(r.board.profile).toBe('vm-rpi-zero-2-w');
    expect((r.events as Ev[]).find((e) => e.event === 'governor-started')).toBeDefined();
  });

  it('throttles the best-effort hogs at memory.high before the governor acts', () => {
    const firstAction = gov[0];
    expect(firstAction?.event).toBe('governor-freeze');
    expect(['hog-a', 'hog-b']).toContain(firstAction?.container);
    const throttled = firstSeen(firstAction!.container!, (s) => (s.high ?? 0) > 0);
    expect(throttled).toBeDefined();
    // The timeline samples once a second: allow for one sample of lag.
    expect(throttled!).toBeLessThanOrEqual(firstAction!.t + 1500);
  });

  it('never touches the critical service; it keeps running with its heartbeat, no restarts', () => {
    expect(gov.filter((e) => e.container === 'critical')).toEqual([]);
    expect(r.final.critical.state.Status).toBe('running');
    expect(r.final.critical.state.OOMKilled).toBe(false);
    expect(r.final.critical.restartCount).toBe(0);
    expect(r.final.critical.lastLog).toMatch(/hog: (holding|\d+ MiB)/);
    expect(firstSeen('critical', (s) => (s.oomKill ?? 0) > 0)).toBeUndefined();
  });

  it('sheds best-effort first: frozen, then stopped or OOM-killed when the critical one needs the memory', () => {
    // The monitor removes a container's cgroup right after it exits, so the kill shows in the record
    // (OOMKilled) and in the timeline as the cgroup going away, not in a memory.events sample.
    const stopped = (n: string) => gov.find((e) => e.container === n && e.event === 'governor-stop')?.t;
    const shed = ['hog-a', 'hog-b'].filter((n) => stopped(n) !== undefined || r.final[n].state.OOMKilled === true);
    expect(shed.length).toBeGreaterThan(0);
    for (const n of shed) {
      const frozeAt = gov.find((e) => e.container === n && e.event === 'governor-freeze')?.t;
      expect(frozeAt).toBeDefined();
      const goneAt = stopped(n) ?? firstSeenAfter(frozeAt!, n, (s) => !(Number(s.current) > 0));
      expect(goneAt).toBeDefined();
      expect(frozeAt!).toBeLessThan(goneAt!);
    }
  });

  it('brings shed containers back when pressure has stayed low', () => {
    const resumed = gov.filter((e) => e.event === 'governor-thaw' || e.event === 'governor-restart');
    expect(resumed.length).toBeGreaterThan(0);
    const firstFreeze = gov.find((e) => e.event === 'governor-freeze')!;
    expect(resumed[0]!.t).toBeGreaterThan(firstFreeze.t);
    expect(String(resumed[0]!.reason)).toMatch(/memory pressure ≤ \d+% for \d+s/);
  });

  it('logs every decision with the numbers behind it', () => {
    for (const e of gov) {
      expect(typeof e.pressurePct).toBe('number');
      expect(typeof e.avg10).toBe('number');
      expect(typeof e.parentMemoryBytes).toBe('number');
      expect(e.reason).toBeTruthy();
    }
  });

  it('keeps the agent alive and the VM out of the global OOM killer', () => {
    expect(r.agent.alive).toBe(true);
    const global = (r.kernel as string[]).filter((l) => /Out of memory: Killed/.test(l) && !/Memory cgroup/.test(l));
    expect(global).toEqual([]);
  });
});
