import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogFollows, MAX_FOLLOWS } from '../../src/agent/log-follow.js';
import type { LogFollowMessage } from '../../src/protocol/types.js';
import { LOG_FILE } from '../../src/runtime/monitor.js';

// The agent's side of `logs` with `follow`: new lines of a container's log file (CRI format, as the
// monitor writes it) go out as messages until the lease, logs-stop, the container's exit or the agent's stop.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function stateDir(): { dir: string; write: (text: string) => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-follow-'));
  dirs.push(dir);
  const file = path.join(dir, LOG_FILE);
  fs.writeFileSync(file, '2026-12-06T00:00:00.000000000Z stdout F old line\n');
  return { dir, write: (text) => fs.appendFileSync(file, `${new Date().toISOString()} stdout F ${text}\n`) };
}

function collect(): { follows: LogFollows; sent: Map<string, LogFollowMessage[]>; ended: (id: string) => Promise<LogFollowMessage> } {
  const sent = new Map<string, LogFollowMessage[]>();
  const waiters = new Map<string, (m: LogFollowMessage) => void>();
  const follows = new LogFollows((id, m) => {
    sent.set(id, [...(sent.get(id) ?? []), m]);
    if (m.end) waiters.get(id)?.(m);
  }, (_id, err) => {
    throw err;
  });
  return { follows, sent, ended: (id) => new Promise((resolve) => waiters.set(id, resolve)) };
}

const texts = (ms: readonly LogFollowMessage[] | undefined): string[] => (ms ?? []).flatMap((m) => m.lines.map((l) => l.text));

describe('agent log follow', () => {
  it('sends only lines written after the start, batched, until logs-stop', async () => {
    const { dir, write } = stateDir();
    const { follows, sent, ended } = collect();
    const { until } = follows.start('c1', { stateDir: dir, exited: () => false }, 60, Date.parse('2026-12-06T00:00:00Z'));
    expect(until).toBe('2026-12-06T00:01:00.000Z');
    const end = ended('c1');
    await new Promise((r) => setTimeout(r, 50));
    write('one');
    write('two');
    await expect.poll(() => texts(sent.get('c1')), { timeout: 5000 }).toEqual(['one', 'two']);
    // Written together, sent together.
    expect(sent.get('c1')!.length).toBe(1);
    expect(follows.stop('c1')).toBe(true);
    expect((await end).end).toBe('stopped');
    await expect.poll(() => follows.size).toBe(0);
    expect(follows.stop('c1')).toBe(false);
  });

  it('ends by itself when the lease runs out, and when the container exits', async () => {
    const a = stateDir();
    const { follows, ended } = collect();
    const expired = ended('lease');
    follows.start('lease', { stateDir: a.dir, exited: () => false }, 1);
    expect((await expired).end).toBe('expired');

    const b = stateDir();
    let running = true;
    const exited = ended('exit');
    follows.start('exit', { stateDir: b.dir, exited: () => !running }, 60);
    await new Promise((r) => setTimeout(r, 50));
    running = false;
    b.write('last words');
    const m = await exited;
    expect(m.end).toBe('exited');
  });

  it('refuses a reused id and more than MAX_FOLLOWS at once; stopAll ends them all', async () => {
    const { dir } = stateDir();
    const { follows, sent } = collect();
    for (let i = 0; i < MAX_FOLLOWS; i++) follows.start(`f${i}`, { stateDir: dir, exited: () => false }, 60);
    expect(() => follows.start('f0', { stateDir: dir, exited: () => false }, 60)).toThrow(/already running/);
    expect(() => follows.start('one-more', { stateDir: dir, exited: () => false }, 60)).toThrow(expect.objectContaining({ category: 'resource' }));
    follows.stopAll();
    await expect.poll(() => follows.size).toBe(0);
    expect([...sent.values()].map((ms) => ms.at(-1)!.end)).toEqual(Array(MAX_FOLLOWS).fill('agent-stopping'));
  });
});
