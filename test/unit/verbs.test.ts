// Pure parts of issue 19's everyday verbs: time flags, ps filtering, update plans, event shapes and
// filters, the exec lookup of a command inside a container root.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectBoard } from '../../src/board/index.js';
import { parseTimeFlag } from '../../src/duration.js';
import { BerthError } from '../../src/errors.js';
import { findExecutable } from '../../src/runtime/exec.js';
import { formatEventLine, parseEventFilters, pastEvents, toDockerEvent } from '../../src/runtime/events.js';
import { withinTime } from '../../src/runtime/logs.js';
import { defaultRunOptions } from '../../src/runtime/options.js';
import type { ContainerRecord } from '../../src/runtime/records.js';
import { filterPsOutput } from '../../src/runtime/top.js';
import { planUpdate } from '../../src/runtime/update.js';
import { fixtureHost } from '../helpers/host-tree.js';

const NOW = Date.parse('2026-12-05T20:00:00Z');

describe('docker time flags', () => {
  it('take RFC 3339 times, Unix seconds and durations before now, and name the flag otherwise', () => {
    expect(parseTimeFlag('2026-12-05T19:00:00.123456789Z', '--since', NOW)).toBe(Date.parse('2026-12-05T19:00:00.123Z'));
    expect(parseTimeFlag('1700000000.5', '--since', NOW)).toBe(1_700_000_000_500);
    expect(parseTimeFlag('10m', '--since', NOW)).toBe(NOW - 600_000);
    expect(() => parseTimeFlag('yesterday', '--until', NOW)).toThrow(/--until: "yesterday"/);
  });

  it('select log records in the window, ends included', () => {
    const r = (time: string) => ({ time, stream: 'stdout' as const, complete: true, text: '' });
    const w = { since: Date.parse('2026-12-05T19:00:00Z'), until: Date.parse('2026-12-05T19:00:01Z') };
    expect([r('2026-12-05T18:59:59.999999999Z'), r('2026-12-05T19:00:00.000000001Z'), r('2026-12-05T19:00:01.000Z'), r('2026-12-05T19:00:01.001Z')].map((x) => withinTime(x, w))).toEqual([false, true, true, false]);
  });
});

describe('top', () => {
  it('keeps the rows of the given pids, the command with its spaces', () => {
    const ps = 'UID   PID  PPID  C STIME TTY  TIME     CMD\nroot    1     0  0 19:00 ?    00:00:01 /sbin/init\nroot  420     1  0 19:01 ?    00:00:00 sleep 600 now\n';
    expect(filterPsOutput(ps, [420])).toEqual({ titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'], rows: [['root', '420', '1', '0', '19:01', '?', '00:00:00', 'sleep 600 now']] });
    expect(() => filterPsOutput('USER COMMAND\nroot x\n', [1])).toThrow(/PID/);
  });
});

describe('update', () => {
  const defaults = detectBoard(fixtureHost('rpi-zero-2-w')).containerDefaults;
  it('writes the new limits, resets what the profile set that --memory replaces, and keeps the restart policy', () => {
    const plan = planUpdate(defaultRunOptions('u'), { memory: 32 << 20, pidsLimit: 40, restart: { name: 'always' } }, defaults);
    const files = Object.fromEntries(plan.files);
    expect(files).toMatchObject({ 'memory.max': String(32 << 20), 'memory.swap.max': '0', 'pids.max': '40', 'memory.high': 'max' });
    expect(plan.options).toMatchObject({ memory: 32 << 20, pidsLimit: 40, restart: { name: 'always' } });
  });

  it('is checked as create is, and needs something to change', () => {
    expect(() => planUpdate(defaultRunOptions('u'), { memory: 1000 }, defaults)).toThrow(/--memory: minimum/);
    expect(() => planUpdate({ ...defaultRunOptions('u'), memory: 64 << 20 }, { memoryReservation: 128 << 20 }, defaults)).toThrow(/--memory-reservation/);
    expect(() => planUpdate(defaultRunOptions('u'), {}, defaults)).toThrow(BerthError);
  });
});

describe('events', () => {
  const rec = (over: Partial<ContainerRecord>): ContainerRecord => ({
    id: 'a'.repeat(64), name: 'web', image: 'reg/busybox:v1', imageDigest: 'sha256:x', options: { ...defaultRunOptions('web'), labels: { tier: 'front' } }, runtime: 'crun',
    createdAt: NOW - 3000, state: 'exited', startedAt: NOW - 2000, finishedAt: NOW - 1000, exitCode: 3, oomKilled: false, restartCount: 0, stoppedByUser: false, ...over,
  });

  it('are docker-shaped, with the exit code on die', () => {
    const [create, start, die] = pastEvents([rec({})]).map((e) => toDockerEvent(e, 'reg/busybox:v1'));
    expect([create!.Action, start!.Action, die!.Action]).toEqual(['create', 'start', 'die']);
    expect(die).toMatchObject({ Type: 'container', Actor: { ID: 'a'.repeat(64), Attributes: { name: 'web', image: 'reg/busybox:v1', exitCode: '3' } }, time: Math.floor((NOW - 1000) / 1000) });
    expect(formatEventLine(die!)).toBe(`2026-12-05T19:59:59.000Z container die ${'a'.repeat(64)} (exitCode=3, image=reg/busybox:v1, name=web)`);
  });

  it('filter as docker: one key\'s values are alternatives, different keys all apply', () => {
    const die = toDockerEvent(pastEvents([rec({})])[2]!, 'reg/busybox:v1');
    const labels = { tier: 'front' };
    expect(parseEventFilters(['event=start', 'event=die'])(die, labels)).toBe(true);
    expect(parseEventFilters(['event=die', 'container=other'])(die, labels)).toBe(false);
    expect(parseEventFilters(['container=aaaa', 'label=tier=front', 'type=container'])(die, labels)).toBe(true);
    expect(parseEventFilters(['label=tier=back'])(die, labels)).toBe(false);
    expect(() => parseEventFilters(['colour=red'])).toThrow(/--filter "colour=red"/);
  });
});

describe('exec command lookup', () => {
  it('finds executables through PATH inside the root, symlinks resolved within it; 127 absent, 126 not executable', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-exec-root-'));
    try {
      fs.mkdirSync(path.join(root, 'bin'));
      fs.writeFileSync(path.join(root, 'bin/tool'), '', { mode: 0o755 });
      fs.writeFileSync(path.join(root, 'bin/data'), '', { mode: 0o644 });
      // An absolute link to the host's /bin/sh resolves inside the root, where there is none.
      fs.symlinkSync('/bin/sh', path.join(root, 'bin/escape'));
      expect(findExecutable(root, 'tool', '/usr/bin:/bin', '/')).toEqual({ found: true });
      expect(findExecutable(root, './bin/tool', '/nowhere', '/')).toEqual({ found: true });
      expect(findExecutable(root, 'data', '/bin', '/')).toMatchObject({ found: false, code: 126 });
      expect(findExecutable(root, 'escape', '/bin', '/')).toMatchObject({ found: false, code: 127 });
      expect(findExecutable(root, 'nope', '/bin', '/')).toMatchObject({ found: false, code: 127, message: 'exec: "nope": executable file not found in $PATH' });
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
