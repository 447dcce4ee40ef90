import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ContainerWakeup } from '../../src/agent/reconcile/wakeup.js';
import { defaultRunOptions } from '../../src/runtime/options.js';
import { EngineDouble } from '../helpers/engine-double.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const engine = (): EngineDouble => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-wakeup-'));
  dirs.push(dir);
  return new EngineDouble({ dir });
};
const LONG = { cmd: ['sh', '-c', 'sleep 600 & wait'] };

describe('ContainerWakeup', () => {
  it('wakes on an exit of a watched container before the deadline, and not on other containers', async () => {
    const e = engine();
    const watched = e.create('img', { ...defaultRunOptions('watched'), ...LONG });
    const other = e.create('img', { ...defaultRunOptions('other'), ...LONG });
    await Promise.all([e.start(watched.id), e.start(other.id)]);
    const w = new ContainerWakeup(e, [watched.id]);
    const t0 = Date.now();
    setTimeout(() => void e.kill(other.id), 20);
    setTimeout(() => void e.kill(watched.id), 80);
    await w.until(Date.now() + 10_000, new AbortController().signal);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(70);
    expect(e.find(watched.id).state).toBe('exited');
    w.close();
  });

  it('remembers an event that came while the loop was busy, and wakes at the deadline without one', async () => {
    const e = engine();
    const c = e.create('img', { ...defaultRunOptions('c'), ...LONG });
    const w = new ContainerWakeup(e, [c.id]);
    await e.start(c.id); // no one waiting yet
    const t0 = Date.now();
    await w.until(Date.now() + 10_000, new AbortController().signal);
    expect(Date.now() - t0).toBeLessThan(50);
    await w.until(Date.now() + 60, new AbortController().signal);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    w.close();
  });

  it('rejects when the signal aborts; a closed wakeup hears nothing', async () => {
    const e = engine();
    const c = e.create('img', { ...defaultRunOptions('c'), ...LONG });
    const w = new ContainerWakeup(e, [c.id]);
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('superseded')), 20);
    await expect(w.until(Infinity, abort.signal)).rejects.toThrow('superseded');
    w.close();
    await e.start(c.id);
    const t0 = Date.now();
    await w.until(Date.now() + 50, new AbortController().signal);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
  });
});
