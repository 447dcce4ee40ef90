// Issue 18: the symlink-swap window. A fleet deploy's bind sources are checked against the device's
// deploy policy when the desired state arrives, but a container that has an allowed directory mounted
// read-write can swap a path component for a symlink afterwards. Confined containers
// (RunOptions.confineBinds) are checked again at every start on the opened source, and that very
// object is what the runtime mounts (src/runtime/bind-pin.ts). Real containers under crun and runc.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectBoard } from '../../src/board/index.js';
import { hostPaths } from '../../src/host/paths.js';
import { BerthRoot } from '../../src/root.js';
import { pinBindSources, prepareBindSources } from '../../src/runtime/bind-pin.js';
import { readLogs } from '../../src/runtime/logs.js';
import type { ContainerEngine } from '../../src/runtime/engine-api.js';
import { defaultRunOptions, type RunOptions } from '../../src/runtime/options.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { netTestEnv } from '../helpers/net/test-env.js';

const has = (exe: string): boolean => spawnSync('sh', ['-c', `command -v ${exe}`]).status === 0;
const runtimes = (['crun', 'runc'] as const).filter(has);

let registry: RegistryInstance;
let tmp: string;
let img: string;

/** The mount points under `dir` this process sees (/proc/self/mountinfo field 5). */
const mountsUnder = (dir: string): string[] => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`));

beforeAll(async () => {
  requireBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-confine-'));
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'confine/busybox', 'v1');
  img = `${registry.host}/confine/busybox:v1`;
}, 120_000);
afterAll(async () => {
  await registry?.stop();
  if (tmp) {
    for (const m of mountsUnder(tmp).reverse()) spawnSync('umount', ['-l', m]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

/** An allowed directory (the app's data directory, say) with `a/` and `b/`, a link `cur` → a, and a secret outside it. */
function layout(name: string): { allowed: string; link: string; secret: string } {
  const base = path.join(tmp, name);
  const allowed = path.join(base, 'allowed');
  for (const d of ['a', 'b']) {
    fs.mkdirSync(path.join(allowed, d), { recursive: true });
    fs.writeFileSync(path.join(allowed, d, 'which'), `${d}\n`);
  }
  const secret = path.join(base, 'outside');
  fs.mkdirSync(secret);
  fs.writeFileSync(path.join(secret, 'which'), 'outside\n');
  const link = path.join(allowed, 'cur');
  fs.symlinkSync(path.join(allowed, 'a'), link);
  return { allowed, link, secret };
}
const swap = (link: string, to: string): void => {
  fs.symlinkSync(to, `${link}.new`);
  fs.renameSync(`${link}.new`, link);
};

describe('pinning a bind source', () => {
  it('mounts the object that was checked: a symlink swapped right after the check changes nothing', () => {
    const { allowed, link, secret } = layout('pin');
    const dir = path.join(tmp, 'pin', 'container');
    fs.mkdirSync(dir);
    const volumes = [{ source: link, target: '/data', readOnly: false, kind: 'bind' as const }];
    const pinned = pinBindSources(dir, volumes, [allowed]);
    try {
      swap(link, secret); // what a container racing the start would do
      expect(fs.readFileSync(path.join(dir, 'binds', '0', 'which'), 'utf8')).toBe('a\n');
    } finally {
      pinned.release();
    }
    expect(mountsUnder(dir)).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'binds', '0'))).toEqual([]);
    // Now that the link leads out, pinning refuses, names where it leads, and leaves nothing mounted.
    expect(() => pinBindSources(dir, volumes, [allowed])).toThrow(new RegExp(`bind mount ${link}:/data leads to ${secret}, outside the host directories this container may bind from`));
    expect(mountsUnder(dir)).toEqual([]);
    // A link to a sibling that merely starts with the allowed path is outside too.
    fs.mkdirSync(`${allowed}-lookalike`);
    swap(link, `${allowed}-lookalike`);
    expect(() => pinBindSources(dir, volumes, [allowed])).toThrow(/leads to .*-lookalike, outside/);
  });
});

describe('creating a missing bind source (compose short syntax)', () => {
  it('makes the app data directory and below when nothing exists yet; never through a link that leads out', () => {
    const base = path.join(tmp, 'create');
    const root = path.join(base, 'state', 'apps', 'web'); // none of it exists yet
    const dir = path.join(base, 'container');
    fs.mkdirSync(dir, { recursive: true });
    const bind = (source: string) => ({ source, target: '/data', readOnly: false, kind: 'bind' as const, createHostPath: true });
    const [staged] = prepareBindSources(dir, [bind(path.join(root, 'data'))], [root]);
    expect(fs.statSync(path.join(root, 'data')).isDirectory()).toBe(true);
    expect(staged!.source).toBe(path.join(dir, 'binds', '0'));
    // A link in the data directory (planted by a container) to outside: mkdir -p would follow it.
    const outside = path.join(base, 'outside');
    fs.mkdirSync(outside);
    fs.symlinkSync(outside, path.join(root, 'link'));
    expect(() => prepareBindSources(dir, [bind(path.join(root, 'link', 'new'))], [root])).toThrow(/leads to .*outside, outside the host directories/);
    expect(fs.readdirSync(outside)).toEqual([]);
    // Not confined: created as docker would.
    prepareBindSources(dir, [bind(path.join(root, 'link', 'new'))], undefined);
    expect(fs.readdirSync(outside)).toEqual(['new']);
  });
});

describe.each(runtimes)('a confined container under %s', (runtime) => {
  const withEngine = async (fn: (engine: ContainerEngine, root: string) => Promise<void>): Promise<void> => {
    const host = hostPaths('/');
    const root = path.join(tmp, `state-${runtime}`);
    const parts = new BerthRoot({ root, host, env: { PATH: process.env.PATH, ...netTestEnv(), BERTH_RUNTIME: runtime }, version: 'test', board: detectBoard(host) });
    try {
      const engine = await parts.engine();
      await parts.pull(img);
      await fn(engine, root);
    } finally {
      parts.close();
    }
  };
  /** Everything the container has printed, once its current run ended. */
  const output = async (engine: ContainerEngine, name: string): Promise<string> => {
    expect(await engine.waitExit(name, 30_000)).toBeDefined();
    return readLogs(engine.logDir(name)).map((r) => `${r.text}${r.complete ? "\n" : ""}`).join('');
  };

  it('binds what the policy allows; after a swap to outside, the next start is refused and the container never sees it', async () => {
    const { allowed, link, secret } = layout(`engine-${runtime}`);
    await withEngine(async (engine, root) => {
      const name = `confined-${runtime}`;
      const opts: RunOptions = { ...defaultRunOptions(name), cmd: ['cat', '/data/which'], confineBinds: [allowed], volumes: [{ source: link, target: '/data', readOnly: true, kind: 'bind' }] };
      const c = engine.create(img, opts);
      await engine.start(name);
      expect(await output(engine, name)).toBe('a\n');
      expect(mountsUnder(path.join(root, 'containers', c.id, 'binds'))).toEqual([]);
      // Within the allowed directory the link may move: the next start follows it.
      swap(link, path.join(allowed, 'b'));
      await engine.start(name);
      expect(await output(engine, name)).toBe('a\nb\n');
      swap(link, secret);
      await expect(engine.start(name)).rejects.toThrow(/leads to .*outside, outside the host directories this container may bind from/);
      expect(await output(engine, name)).toBe('a\nb\n');
      expect(engine.find(name).state).not.toBe('running');
      // Created while the link leads out: refused at create, nothing left behind.
      expect(() => engine.create(img, { ...opts, name: `${name}-2` })).toThrow(/leads to .*outside/);
      expect(engine.list().map((x) => x.name)).toEqual([name]);
      // Not confined (a local `berth run`): the runtime follows the link as docker would.
      engine.create(img, { ...opts, name: `${name}-local`, confineBinds: undefined });
      await engine.start(`${name}-local`);
      expect(await output(engine, `${name}-local`)).toBe('outside\n');
      for (const n of [name, `${name}-local`]) await engine.remove(n, true);
    });
  }, 120_000);

  it('removing a container never reaches into a bind source a killed start left staged', async () => {
    const { allowed, link } = layout(`rm-${runtime}`);
    await withEngine(async (engine, root) => {
      const name = `staged-${runtime}`;
      const volumes = [{ source: link, target: '/data', readOnly: false, kind: 'bind' as const }];
      const c = engine.create(img, { ...defaultRunOptions(name), cmd: ['true'], confineBinds: [allowed], volumes });
      const dir = path.join(root, 'containers', c.id);
      pinBindSources(dir, volumes, [allowed]); // and never released: the agent was killed here
      expect(mountsUnder(dir)).toHaveLength(1);
      await engine.remove(name, true);
      expect(mountsUnder(dir)).toEqual([]);
      expect(fs.readFileSync(path.join(allowed, 'a', 'which'), 'utf8')).toBe('a\n');
    });
  }, 60_000);
});
