import { expect, it } from 'vitest';
import type { Readable } from 'node:stream';
import { BerthError } from '../../../src/errors.js';
import type { ContainerEngine, ContainerEvent } from '../../../src/runtime/engine-api.js';
import type { RunOptions } from '../../../src/runtime/options.js';
import type { ContainerRecord } from '../../../src/runtime/records.js';

/** What the verb cases need from the suite around them (test/helpers/conformance/engine.ts). */
export interface VerbCaseContext {
  readonly engine: () => ContainerEngine;
  readonly create: (base: string, cmd: string[], extra?: Partial<RunOptions>) => ContainerRecord;
  readonly record: () => { events: ContainerEvent[]; stop: () => void; of: (id: string) => ContainerEvent[] };
  readonly timeoutMs: number;
}

const SERVICE = ['sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"];

async function text(s: Readable | null): Promise<string> {
  let out = '';
  if (s) for await (const chunk of s) out += String(chunk);
  return out;
}

function expectCategory(f: () => unknown, category: BerthError['category']): void {
  let caught: unknown;
  try {
    f();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected a BerthError ${category}`).toBeInstanceOf(BerthError);
  expect((caught as BerthError).category).toBe(category);
}

/** The everyday verbs' engine operations (issue 19): execProcess, processes, rename, update. */
export function verbConformanceCases(x: VerbCaseContext): void {
  it('execProcess keeps stdout and stderr apart, passes stdin and -e, and gives docker exec exit codes', async () => {
    const e = x.engine();
    const c = x.create('execp', SERVICE, { env: ['GREETING=hello'] });
    expectCategory(() => e.execProcess(c.id, { argv: ['true'] }), 'conflict');
    await e.start(c.id);
    const p = e.execProcess(c.id, { argv: ['sh', '-c', 'echo out $GREETING $EXTRA; echo err >&2; exit 3'], env: ['EXTRA=more'] });
    const [out, err, code] = await Promise.all([text(p.stdout), text(p.stderr), p.exit]);
    expect({ out, err, code }).toEqual({ out: 'out hello more\n', err: 'err\n', code: 3 });
    const cat = e.execProcess(c.id, { argv: ['cat'], stdin: true });
    cat.stdin!.end('from stdin');
    expect(await Promise.all([text(cat.stdout), cat.exit])).toEqual(['from stdin', 0]);
    const missing = e.execProcess(c.id, { argv: ['no-such-command'] });
    expect(await missing.exit).toBe(127);
    expect(await text(missing.stderr)).toMatch(/no-such-command.*not found/);
    expectCategory(() => e.execProcess(c.id, { argv: ['sh'], tty: true }), 'usage');
    expect(await e.execProcess(c.id, { argv: ['sh', '-c', 'exit 5'], detach: true }).exit).toBe(0);
    await e.remove(c.id, true);
  }, x.timeoutMs);

  it('processes lists the running container\'s pids, its init among them; not running is a conflict', async () => {
    const e = x.engine();
    const c = x.create('top', SERVICE);
    expectCategory(() => e.processes(c.id), 'conflict');
    await e.start(c.id);
    expect(e.processes(c.id)).toContain(e.pid(c.id));
    await e.remove(c.id, true);
  }, x.timeoutMs);

  it('rename keeps the id, frees the old name, refuses a used or invalid one, and is an event', async () => {
    const e = x.engine();
    const rec = x.record();
    try {
      const a = x.create('rename-a', ['sh', '-c', 'exit 0']);
      const b = x.create('rename-b', ['sh', '-c', 'exit 0']);
      expectCategory(() => e.rename(a.id, b.name), 'conflict');
      expectCategory(() => e.rename(a.id, '-bad'), 'invalid');
      const renamed = e.rename(a.name, `${a.name}-new`);
      expect(renamed).toMatchObject({ id: a.id, name: `${a.name}-new` });
      expect(e.find(`${a.name}-new`).id).toBe(a.id);
      expectCategory(() => e.find(a.name), 'notFound');
      await new Promise((r) => setTimeout(r, 50));
      expect(rec.of(a.id).find((ev) => ev.type === 'rename')).toMatchObject({ name: `${a.name}-new`, oldName: a.name });
      await e.remove(a.id);
      await e.remove(b.id);
    } finally {
      rec.stop();
    }
  }, x.timeoutMs);

  it('update changes limits and restart policy, live where cgroups are enforced, and checks them like create', async () => {
    const e = x.engine();
    const c = x.create('update', SERVICE, { memory: 64 * 1024 * 1024 });
    await e.start(c.id);
    const rec = x.record();
    try {
      expectCategory(() => e.update(c.id, { memory: 1024 }), 'invalid');
      const u = e.update(c.id, { memory: 32 * 1024 * 1024, pidsLimit: 50, restart: { name: 'unless-stopped' } });
      expect(u.options).toMatchObject({ memory: 32 * 1024 * 1024, pidsLimit: 50, restart: { name: 'unless-stopped' } });
      expect(e.find(c.id).options.restart).toEqual({ name: 'unless-stopped' });
      if (e.runtime.cgroupsEnforced) expect(e.stats(c.id).memoryLimit).toBe(32 * 1024 * 1024);
      expect(rec.of(c.id).map((ev) => ev.type)).toEqual(['update']);
    } finally {
      rec.stop();
    }
    await e.remove(c.id, true);
  }, x.timeoutMs);
}
