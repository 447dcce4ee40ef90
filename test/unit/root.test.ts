// The composition root (src/root.ts) and the store's place at the bottom of the stack: the root opens
// one store, lazily, and builds each part once over it; src/store imports nothing from the stages above.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { detectBoard } from '../../src/board/index.js';
import { BerthError } from '../../src/errors.js';
import { BerthRoot } from '../../src/root.js';
import { DB_FILE } from '../../src/store/store.js';
import { fixtureHost } from '../helpers/host-tree.js';

const dirs: string[] = [];
const roots: BerthRoot[] = [];
afterEach(() => {
  roots.splice(0).forEach((r) => r.close());
  dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});
const host = fixtureHost('rpi-4b-4g');
function openRoot(): { root: BerthRoot; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-root-'));
  dirs.push(dir);
  const root = new BerthRoot({ root: dir, host, env: {}, version: 'test', board: detectBoard(host), snapshotMode: 'copy' });
  roots.push(root);
  return { root, dir };
}

describe('BerthRoot', () => {
  it('opens the store only when a part needs it, and builds each part once', async () => {
    const { root, dir } = openRoot();
    expect(root.board().profile).toBe(detectBoard(host).profile);
    expect(fs.existsSync(path.join(dir, DB_FILE))).toBe(false);
    const images = root.images();
    expect(fs.existsSync(path.join(dir, DB_FILE))).toBe(true);
    expect(root.images()).toBe(images);
    expect(root.deployments()).toBe(root.deployments());
    expect(await root.spool()).toBe(await root.spool());
    expect(images.list()).toEqual([]);
  });

  it('gives every part the same store: what the deployments write, a second root reads after close', async () => {
    const { root, dir } = openRoot();
    root.deployments().receive({ revision: 3, services: {} }, 1000);
    (await root.spool()).push('events', { kind: 'exited' });
    root.close();
    const again = new BerthRoot({ root: dir, host, env: {}, version: 'test', board: detectBoard(host) });
    roots.push(again);
    expect(again.deployments().latest()).toMatchObject({ revision: 3, status: 'applying', desired: { revision: 3, services: {} } });
    expect((await again.spool()).count()).toBe(1);
  });

  it('refuses use after close instead of opening the store again', async () => {
    const { root } = openRoot();
    root.close();
    expect(() => root.deployments()).toThrow(BerthError);
    expect(() => root.images()).toThrow(/after it was closed/);
    await expect(root.spool()).rejects.toThrow(/after it was closed/);
  });
});

describe('src/store', () => {
  it('imports nothing but itself, errors.ts and its database driver', () => {
    const dir = fileURLToPath(new URL('../../src/store/', import.meta.url));
    for (const f of fs.readdirSync(dir)) {
      const text = fs.readFileSync(path.join(dir, f), 'utf8');
      for (const [, spec] of text.matchAll(/^(?:import|export)\b[^;]*?from '([^']+)'/gms)) {
        expect([f, spec!.startsWith('./') || spec === '../errors.js' || spec!.startsWith('node:') || spec!.startsWith('better-sqlite3')]).toEqual([f, true]);
      }
    }
  });
});
