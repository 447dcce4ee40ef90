// The engine's event source on its own: differences between looks, and what makes it look (a state
// directory's exit or monitor.pid, the WAL file, the sweep). The containers are records in a list the
// test changes, as another process or a monitor would change the database and the files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ContainerEvent } from '../../src/runtime/engine-api.js';
import { ContainerWatch } from '../../src/runtime/watch.js';
import type { ContainerRecord } from '../../src/runtime/records.js';

const dirs: string[] = [];
const stops: Array<() => void> = [];
afterEach(() => {
  stops.splice(0).forEach((s) => s());
  dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});

const rec = (id: string, patch: Partial<ContainerRecord> = {}): ContainerRecord => ({
  id, name: `n-${id}`, image: 'img', imageDigest: 'sha256:0', runtime: 'crun', createdAt: 1, state: 'created', oomKilled: false, restartCount: 0,
  stoppedByUser: false, options: {} as ContainerRecord['options'], ...patch,
});

function rig(sweepMs = 60_000) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-watch-'));
  dirs.push(root);
  const containersDir = path.join(root, 'containers');
  const stateDir = (id: string): string => path.join(containersDir, id, 'state');
  let containers: ContainerRecord[] = [];
  const watch = new ContainerWatch({ containersDir, stateDir, walFile: path.join(root, 'berth.db-wal'), list: () => containers, sweepMs });
  const events: ContainerEvent[] = [];
  const set = (list: ContainerRecord[]): void => {
    for (const c of list) fs.mkdirSync(stateDir(c.id), { recursive: true });
    containers = list;
  };
  const subscribe = (): void => {
    stops.push(watch.subscribe((e) => events.push(e)));
  };
  const types = (): string[] => events.map((e) => `${e.type}:${e.id}`);
  return { root, watch, events, set, subscribe, types, stateDir };
}

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('ContainerWatch', () => {
  it('reports the present as no news, then each transition once, in order, however many looks see it', () => {
    const r = rig();
    r.set([rec('a', { state: 'running', startedAt: 10 })]);
    r.subscribe();
    r.watch.look();
    expect(r.events).toEqual([]);
    r.set([rec('a', { state: 'exited', startedAt: 10, exitCode: 2 }), rec('b')]);
    r.watch.look();
    r.watch.look();
    // b started and was OOM-killed between two looks: still start, oom, exit.
    r.set([rec('a', { state: 'exited', startedAt: 10, exitCode: 2 }), rec('b', { state: 'exited', startedAt: 20, exitCode: 137, oomKilled: true })]);
    r.watch.look();
    r.set([rec('b', { state: 'exited', startedAt: 20, exitCode: 137, oomKilled: true })]);
    r.watch.look();
    expect(r.types()).toEqual(['exit:a', 'create:b', 'start:b', 'oom:b', 'exit:b', 'remove:a']);
    expect(r.events[0]).toMatchObject({ exitCode: 2, oomKilled: false, state: 'exited', name: 'n-a' });
  });

  it('looks when a monitor writes its exit record, and not when only the log grows', async () => {
    const r = rig();
    r.set([rec('a', { state: 'running', startedAt: 10 })]);
    r.subscribe();
    r.set([rec('a', { state: 'exited', startedAt: 10, exitCode: 0 })]);
    fs.writeFileSync(path.join(r.stateDir('a'), 'container.log'), 'x\n');
    await new Promise((res) => setTimeout(res, 100));
    expect(r.events).toEqual([]);
    fs.writeFileSync(path.join(r.stateDir('a'), 'exit'), '{}');
    await until(() => r.events.length > 0);
    expect(r.types()).toEqual(['exit:a']);
  });

  it("looks on another process's commit (the WAL file) and on the sweep, and stops with the last listener", async () => {
    const r = rig(200);
    r.subscribe();
    r.set([rec('c')]);
    fs.writeFileSync(path.join(r.root, 'berth.db-wal'), 'commit');
    await until(() => r.types().includes('create:c'));
    r.set([rec('c', { state: 'dead', startedAt: 5, exitCode: 255 })]); // a monitor killed: no file says so
    await until(() => r.types().includes('exit:c'), 2000);
    expect(r.events.at(-2)).toMatchObject({ type: 'start' });
    stops.splice(0).forEach((s) => s());
    expect(r.watch.active).toBe(false);
    r.set([]);
    r.watch.look();
    await new Promise((res) => setTimeout(res, 300));
    expect(r.types().includes('remove:c')).toBe(false);
  });

  it('a listener that throws does not keep the event from the others', () => {
    const r = rig();
    stops.push(r.watch.subscribe(() => {
      throw new Error('boom');
    }));
    r.subscribe();
    r.set([rec('d')]);
    r.watch.look();
    expect(r.types()).toEqual(['create:d']);
  });

  it('survives a look from a timer whose list fails (the store closed at shutdown), and a called look still throws', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-watch-'));
    dirs.push(root);
    let closed = false;
    let failed = 0;
    const list = (): ContainerRecord[] => {
      if (!closed) return [];
      failed++;
      throw new TypeError('The database connection is not open');
    };
    const watch = new ContainerWatch({ containersDir: path.join(root, 'containers'), stateDir: (id) => path.join(root, id), walFile: path.join(root, 'berth.db-wal'), list, sweepMs: 10 });
    stops.push(watch.subscribe(() => undefined));
    closed = true;
    // The sweep looks every 10 ms: several failing looks, none thrown out of the timer (vitest fails the run on an uncaught error).
    await until(() => failed >= 3);
    expect(() => watch.look()).toThrow(/not open/);
  });
});
