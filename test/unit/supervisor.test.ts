import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Supervisor, type SupervisorEvent } from '../../src/agent/supervisor.js';
import { defaultRunOptions, type RestartPolicy } from '../../src/runtime/options.js';
import type { ContainerRecord } from '../../src/runtime/records.js';
import { EngineDouble } from '../helpers/engine-double.js';

const SERVICE = ['sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"];
const dirs: string[] = [];
const aborts: AbortController[] = [];
afterEach(() => {
  aborts.splice(0).forEach((a) => a.abort());
  dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

/** The engine double, counting container list reads. */
class CountingEngine extends EngineDouble {
  lists = 0;
  override list(): ContainerRecord[] {
    this.lists++;
    return super.list();
  }
}

function rig() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-supervisor-'));
  dirs.push(dir);
  const engine = new CountingEngine({ dir });
  const events: SupervisorEvent[] = [];
  const abort = new AbortController();
  aborts.push(abort);
  const supervisor = new Supervisor(engine, (e) => events.push(e), { baseMs: 50, maxMs: 200, healthyAfterMs: 60_000 });
  const run = (): Promise<void> => supervisor.run(abort.signal);
  const service = async (name: string, restart: RestartPolicy): Promise<ContainerRecord> =>
    engine.start(engine.create('app:1', { ...defaultRunOptions(name), cmd: SERVICE, restart }).id);
  return { engine, events, run, service, abort };
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await sleep(5);
  }
};

describe('Supervisor over the engine event stream', () => {
  it('restarts a container after its exit event and backoff, without listing containers while nothing happens', async () => {
    const r = rig();
    const c = await r.service('web', { name: 'always' });
    const running = r.run();
    await until(() => r.events.some((e) => e.type === 'adopted'));
    const idle = r.engine.lists;
    await sleep(300);
    expect(r.engine.lists).toBe(idle);

    r.engine.oomKill(c.id);
    await until(() => r.events.some((e) => e.type === 'restarted'));
    expect(r.events.map((e) => e.type)).toEqual(['adopted', 'exited', 'restart-scheduled', 'restarted']);
    expect(r.events.find((e) => e.type === 'exited')!.detail).toMatchObject({ exitCode: 137, oomKilled: true });
    expect(r.engine.find(c.id)).toMatchObject({ state: 'running', restartCount: 1 });
    r.abort.abort();
    await running;
  });

  it('leaves a container stopped by the user alone, and one whose policy is no', async () => {
    const r = rig();
    const a = await r.service('a', { name: 'always' });
    const b = await r.service('b', { name: 'no' });
    const running = r.run();
    await r.engine.stop(a.id, 1);
    r.engine.oomKill(b.id);
    await until(() => r.events.filter((e) => e.type === 'exited').length === 2);
    await sleep(200);
    expect(r.events.some((e) => e.type === 'restarted')).toBe(false);
    expect(r.engine.find(a.id).state).toBe('exited');
    r.abort.abort();
    await running;
  });

  it('a container removed while it is being restarted ends nothing: the supervisor goes on with the others', async () => {
    const r = rig();
    const gone = await r.service('gone', { name: 'always' });
    const other = await r.service('other', { name: 'always' });
    // The start fails the way the engine fails it when a deploy removed the container meanwhile.
    const start = r.engine.start.bind(r.engine);
    r.engine.start = async (id, opts) => {
      if (id !== gone.id) return start(id, opts);
      await r.engine.remove(id, true);
      return start(id, opts);
    };
    const running = r.run();
    r.engine.oomKill(gone.id);
    r.engine.oomKill(other.id);
    await until(() => r.events.some((e) => e.type === 'restarted' && e.container === 'other'));
    expect(r.engine.list().map((c) => c.name)).toEqual(['other']);
    expect(r.events.some((e) => e.type === 'restart-failed')).toBe(false);
    // Still running: a later exit is restarted as usual.
    r.engine.oomKill(other.id);
    await until(() => r.events.filter((e) => e.type === 'restarted' && e.container === 'other').length === 2);
    r.abort.abort();
    await running;
  });
});
