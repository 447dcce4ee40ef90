import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BerthError } from '../../../src/errors.js';
import type { ContainerEngine, ContainerEvent } from '../../../src/runtime/engine-api.js';
import { defaultRunOptions, type RunOptions } from '../../../src/runtime/options.js';
import { verbConformanceCases } from './engine-verbs.js';

/**
 * One engine to test and what the cases need around it. Commands are busybox's: the real engine runs
 * them in a container, a double must give them the same meaning.
 */
export interface EngineUnderTest {
  readonly engine: ContainerEngine;
  /** A pulled image with busybox `sh`. */
  readonly image: string;
  /** An image reference that is not present. */
  readonly missingImage: string;
  /**
   * How to end a run by a kernel OOM kill, when this engine can: the options and command of a container
   * that gets OOM-killed, and what to do once it runs (a double ends it itself). Absent: the case is skipped.
   */
  readonly oom?: { readonly options: Partial<RunOptions>; readonly cmd: string[]; readonly provoke?: (id: string) => void };
  readonly cleanup: () => Promise<void> | void;
}

/** Runs until its stop signal, then exits 0 (a trap: PID 1 ignores an untrapped SIGTERM). */
const SERVICE = ['sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"];
/** Runs until SIGKILL: PID 1 without a trap ignores SIGTERM. */
const STUBBORN = ['sleep', '600'];
const exitsWith = (code: number): string[] => ['sh', '-c', `exit ${code}`];

/** Fails with the BerthError category `category`. */
async function expectCategory(f: () => unknown, category: BerthError['category']): Promise<void> {
  let caught: unknown;
  try {
    await f();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a BerthError ${category}`).toBeInstanceOf(BerthError);
  expect((caught as BerthError).category).toBe(category);
}

/** Resolves once `pred` holds (checked after every event and at the start), or fails after `ms`. */
async function until(engine: ContainerEngine, pred: () => boolean, ms = 15_000): Promise<void> {
  if (pred()) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`condition not met within ${ms} ms`));
    }, ms);
    const unsubscribe = engine.subscribe(() => {
      if (!pred()) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

/**
 * The ContainerEngine contract (src/runtime/engine-api.ts) as test cases, run against the real engine
 * (test/integration/engine-conformance.test.ts) and against every test double (test/unit/engine-doubles.test.ts).
 */
export function describeEngineConformance(name: string, setup: () => Promise<EngineUnderTest> | EngineUnderTest, timeoutMs = 30_000): void {
  describe(`ContainerEngine conformance: ${name}`, () => {
    let t: EngineUnderTest;
    let n = 0;
    const unique = (base: string): string => `conf-${base}-${++n}`;
    const create = (base: string, cmd: string[], extra: Partial<RunOptions> = {}) => t.engine.create(t.image, { ...defaultRunOptions(unique(base)), cmd, ...extra });
    /** Events for one container, recorded from before it is created. */
    const record = () => {
      const events: ContainerEvent[] = [];
      const stop = t.engine.subscribe((e) => events.push(e));
      return { events, stop, of: (id: string) => events.filter((e) => e.id === id) };
    };

    beforeAll(async () => {
      t = await setup();
    }, 120_000);
    afterAll(async () => {
      for (const c of t?.engine.list() ?? []) if (c.name.startsWith('conf-')) await t.engine.remove(c.id, true).catch(() => undefined);
      await t?.cleanup();
    }, 60_000);

    it('create → start → list → stop → remove, with the state at each step', async () => {
      const c = create('life', SERVICE);
      expect(c).toMatchObject({ state: 'created', restartCount: 0, stoppedByUser: false, oomKilled: false });
      expect(t.engine.list().find((x) => x.id === c.id)?.state).toBe('created');
      const running = await t.engine.start(c.id);
      expect(running).toMatchObject({ id: c.id, state: 'running' });
      expect(running.startedAt).toBeGreaterThanOrEqual(c.createdAt);
      expect(t.engine.pid(c.id)).toBeGreaterThan(0);
      expect(t.engine.list().find((x) => x.id === c.id)?.state).toBe('running');
      expect(await t.engine.start(c.id)).toMatchObject({ state: 'running', startedAt: running.startedAt });
      const stopped = await t.engine.stop(c.id, 10);
      expect(stopped).toMatchObject({ state: 'exited', exitCode: 0, stoppedByUser: true });
      expect(t.engine.pid(c.id)).toBeUndefined();
      expect(await t.engine.stop(c.id)).toMatchObject({ state: 'exited', exitCode: 0 });
      expect((await t.engine.remove(c.id)).id).toBe(c.id);
      expect(t.engine.list().some((x) => x.id === c.id)).toBe(false);
      await expectCategory(() => t.engine.find(c.id), 'notFound');
    }, timeoutMs);

    it('names are unique; find takes a name, the full id or a unique id prefix; bad input names the problem', async () => {
      const c = create('named', SERVICE);
      await expectCategory(() => t.engine.create(t.image, { ...defaultRunOptions(c.name), cmd: SERVICE }), 'conflict');
      expect(t.engine.find(c.name).id).toBe(c.id);
      expect(t.engine.find(c.id).name).toBe(c.name);
      expect(t.engine.find(c.id.slice(0, 12)).id).toBe(c.id);
      await expectCategory(() => t.engine.find('conf-no-such-container'), 'notFound');
      await expectCategory(() => t.engine.create(t.missingImage, { ...defaultRunOptions(unique('noimage')), cmd: SERVICE }), 'notFound');
      await expectCategory(() => t.engine.create(t.image, { ...defaultRunOptions(unique('tiny')), cmd: SERVICE, memory: 1024 }), 'invalid');
      await t.engine.remove(c.id);
    }, timeoutMs);

    it('reports the exit code of a container that ends by itself, and waitExit waits for it', async () => {
      const c = create('exit3', exitsWith(3));
      await t.engine.start(c.id);
      const ended = await t.engine.waitExit(c.id, 10_000);
      expect(ended).toMatchObject({ state: 'exited', exitCode: 3, oomKilled: false, stoppedByUser: false });
      expect(t.engine.find(c.id)).toMatchObject({ state: 'exited', exitCode: 3 });
      expect(ended!.finishedAt).toBeGreaterThan(0);
      await t.engine.remove(c.id);
    }, timeoutMs);

    it('waitExit gives up after its timeout while the container runs', async () => {
      const c = create('waits', SERVICE);
      await t.engine.start(c.id);
      const before = Date.now();
      expect(await t.engine.waitExit(c.id, 300)).toBeUndefined();
      expect(Date.now() - before).toBeGreaterThanOrEqual(250);
      await t.engine.remove(c.id, true);
    }, timeoutMs);

    it('kill sends the signal and marks the container stopped by the user; killing a stopped one is a conflict', async () => {
      const c = create('kill', SERVICE);
      await expectCategory(() => t.engine.kill(c.id), 'conflict');
      await t.engine.start(c.id);
      await t.engine.kill(c.id, 'SIGKILL');
      expect(await t.engine.waitExit(c.id, 10_000)).toMatchObject({ state: 'exited', exitCode: 137, stoppedByUser: true });
      await expectCategory(() => t.engine.kill(c.id), 'conflict');
      await t.engine.remove(c.id);
    }, timeoutMs);

    it('stop escalates to SIGKILL after the timeout when the stop signal is ignored', async () => {
      const c = create('stubborn', STUBBORN);
      await t.engine.start(c.id);
      const before = Date.now();
      expect(await t.engine.stop(c.id, 1)).toMatchObject({ state: 'exited', exitCode: 137 });
      expect(Date.now() - before).toBeGreaterThanOrEqual(900);
      await t.engine.remove(c.id);
    }, timeoutMs);

    it('removes a running container only when forced', async () => {
      const c = create('rm', SERVICE);
      await t.engine.start(c.id);
      await expectCategory(() => t.engine.remove(c.id), 'conflict');
      expect(t.engine.find(c.id).state).toBe('running');
      await t.engine.remove(c.id, true);
      await expectCategory(() => t.engine.find(c.id), 'notFound');
    }, timeoutMs);

    it('a start counted as a restart raises restartCount and clears the previous exit', async () => {
      const c = create('restart', exitsWith(2));
      await t.engine.start(c.id);
      await t.engine.waitExit(c.id, 10_000);
      const again = await t.engine.start(c.id, { countRestart: true });
      expect(again.restartCount).toBe(1);
      expect(again.startedAt).toBeGreaterThan(0);
      expect(await t.engine.waitExit(c.id, 10_000)).toMatchObject({ state: 'exited', exitCode: 2, restartCount: 1 });
      await t.engine.start(c.id);
      expect((await t.engine.waitExit(c.id, 10_000))!.restartCount).toBe(1);
      await t.engine.remove(c.id);
    }, timeoutMs);

    it('exec runs in a running container with its exit code and output; not running is a conflict', async () => {
      const c = create('exec', SERVICE);
      await expectCategory(() => t.engine.exec(c.id, ['sh', '-c', 'exit 0'], 5000), 'conflict');
      await t.engine.start(c.id);
      expect(await t.engine.exec(c.id, ['sh', '-c', 'exit 4'], 5000)).toMatchObject({ exitCode: 4 });
      expect(await t.engine.exec(c.id, ['sh', '-c', 'echo conformance'], 5000)).toEqual({ exitCode: 0, output: 'conformance\n' });
      await t.engine.remove(c.id, true);
    }, timeoutMs);

    it('delivers create, start, exit and remove events in order, with the exit code', async () => {
      const rec = record();
      try {
        const c = create('events', exitsWith(5));
        await t.engine.start(c.id);
        await until(t.engine, () => rec.of(c.id).some((e) => e.type === 'exit'));
        await t.engine.remove(c.id);
        await until(t.engine, () => rec.of(c.id).some((e) => e.type === 'remove'));
        expect(rec.of(c.id).map((e) => e.type)).toEqual(['create', 'start', 'exit', 'remove']);
        expect(rec.of(c.id).find((e) => e.type === 'exit')).toMatchObject({ exitCode: 5, oomKilled: false, state: 'exited', name: c.name });
        expect(rec.of(c.id).find((e) => e.type === 'start')).toMatchObject({ restartCount: 0 });
      } finally {
        rec.stop();
      }
    }, timeoutMs);

    it('delivers the exit of a stopped container, and nothing more after unsubscribing', async () => {
      const rec = record();
      const c = create('unsub', SERVICE);
      await t.engine.start(c.id);
      await t.engine.stop(c.id, 10);
      await until(t.engine, () => rec.of(c.id).some((e) => e.type === 'exit'));
      expect(rec.of(c.id).find((e) => e.type === 'exit')).toMatchObject({ exitCode: 0 });
      rec.stop();
      const seen = rec.events.length;
      await t.engine.remove(c.id);
      expect(rec.events.length).toBe(seen);
    }, timeoutMs);

    it('freezes and thaws a running container where cgroups are enforced, and says why not elsewhere', async () => {
      const c = create('freeze', SERVICE);
      await t.engine.start(c.id);
      if (!t.engine.runtime.cgroupsEnforced) {
        await expectCategory(() => t.engine.freeze(c.id), 'host');
      } else {
        const rec = record();
        try {
          t.engine.freeze(c.id);
          expect(t.engine.stats(c.id).frozen).toBe(true);
          expect(t.engine.inspect(c.id)).toMatchObject({ State: { Status: 'paused', Paused: true, Running: true } });
          expect(t.engine.find(c.id).state).toBe('running');
          t.engine.thaw(c.id);
          expect(t.engine.stats(c.id).frozen).toBe(false);
          expect(t.engine.inspect(c.id)).toMatchObject({ State: { Status: 'running', Paused: false } });
          expect(rec.of(c.id).map((e) => e.type)).toEqual(['freeze', 'thaw']);
        } finally {
          rec.stop();
        }
      }
      await t.engine.remove(c.id, true);
      await expectCategory(() => t.engine.freeze(c.name), 'notFound');
    }, timeoutMs);

    it('inspect, stats and logDir describe the container; a stopped one is not measured', async () => {
      const c = create('inspect', exitsWith(0), { labels: { role: 'conformance' } });
      expect(t.engine.inspect(c.id)).toMatchObject({ Id: c.id, Name: c.name, State: { Status: 'created', Running: false }, Config: { Labels: { role: 'conformance' } } });
      expect(fs.statSync(t.engine.logDir(c.id)).isDirectory()).toBe(true);
      await t.engine.start(c.id);
      await t.engine.waitExit(c.id, 10_000);
      expect(t.engine.stats(c.id)).toMatchObject({ id: c.id, name: c.name, measured: false, note: 'not running' });
      expect(t.engine.stats(t.engine.find(c.id))).toEqual(t.engine.stats(c.id));
      expect(t.engine.inspect(c.id)).toMatchObject({ State: { Status: 'exited', ExitCode: 0, OOMKilled: false } });
      await t.engine.remove(c.id);
    }, timeoutMs);

    verbConformanceCases({ engine: () => t.engine, create, record, timeoutMs });

    it('reports an OOM kill in the record and as an event before the exit', async (ctx) => {
      if (!t.oom) return ctx.skip();
      const rec = record();
      try {
        const c = create('oom', t.oom.cmd, t.oom.options);
        await t.engine.start(c.id);
        t.oom.provoke?.(c.id);
        expect(await t.engine.waitExit(c.id, 20_000)).toMatchObject({ state: 'exited', oomKilled: true, exitCode: 137 });
        await until(t.engine, () => rec.of(c.id).some((e) => e.type === 'exit'));
        expect(rec.of(c.id).map((e) => e.type).slice(-2)).toEqual(['oom', 'exit']);
        await t.engine.remove(c.id);
      } finally {
        rec.stop();
      }
    }, timeoutMs);
  });
}
