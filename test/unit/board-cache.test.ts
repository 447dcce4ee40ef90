// The board detection cache (src/board/cache.ts): used while its key matches, ignored and rewritten
// when it is stale, torn or tampered with. A hit is told from a fresh detection by changing a host
// file that is not part of the key (the device-tree model) after the first call.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { boardCacheFile, detectBoardCached } from '../../src/board/index.js';
import { BUILTIN_PROFILES_DIR } from '../../src/board/profiles.js';
import { variantHost } from '../helpers/host-tree.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function setup(files: Record<string, string | null> = {}) {
  const v = variantHost('rpi-4b-4g', { 'proc/sys/kernel/random/boot_id': 'boot-1\n', ...files });
  cleanups.push(v.cleanup);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-root-'));
  cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
  const cache = { file: boardCacheFile(root), version: '1.2.3' };
  const set = (rel: string, content: string): void => fs.writeFileSync(path.join(v.dir, rel), content);
  return { host: v.host, root, cache, set };
}

const MODEL = 'proc/device-tree/model';

describe('board detection cache', () => {
  it('detects once, then answers from the cache while boot id, profiles and version match', () => {
    const { host, cache, set } = setup();
    const first = detectBoardCached(host, undefined, cache);
    expect(first.model).toBe('Raspberry Pi 4 Model B Rev 1.4');
    expect(fs.existsSync(cache.file)).toBe(true);
    set(MODEL, 'Changed Model\0');
    expect(detectBoardCached(host, undefined, cache)).toEqual(first);
  });

  it('a new boot id, another berth version or MemTotal detects afresh', () => {
    const { host, cache, set } = setup();
    detectBoardCached(host, undefined, cache);
    set(MODEL, 'Model A\0');
    expect(detectBoardCached(host, undefined, { ...cache, version: '1.2.4' }).model).toBe('Model A');
    set(MODEL, 'Model B\0');
    set('proc/sys/kernel/random/boot_id', 'boot-2\n');
    expect(detectBoardCached(host, undefined, cache).model).toBe('Model B');
    set(MODEL, 'Model C\0');
    const meminfo = fs.readFileSync(host.resolve('/proc/meminfo'), 'utf8');
    set('proc/meminfo', meminfo.replace(/^MemTotal:\s+\d+/m, 'MemTotal:        1000000'));
    expect(detectBoardCached(host, undefined, cache).model).toBe('Model C');
    expect(detectBoardCached(host, undefined, cache).model).toBe('Model C'); // and cached again
  });

  it('an edited profile in BERTH_PROFILES_DIR detects afresh', () => {
    const { host, cache, set } = setup();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-profiles-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.cpSync(BUILTIN_PROFILES_DIR, dir, { recursive: true });
    detectBoardCached(host, dir, cache);
    set(MODEL, 'Edited\0');
    const file = path.join(dir, 'rpi-4b.json');
    const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as { name: string };
    fs.writeFileSync(file, JSON.stringify({ ...profile, name: 'Pi 4 (edited)' }, null, 2));
    const b = detectBoardCached(host, dir, cache);
    expect(b).toMatchObject({ model: 'Edited', profileName: 'Pi 4 (edited)' });
  });

  it.each([
    ['garbage', () => 'not a cache file'],
    ['a torn file', (text: string) => text.slice(0, text.length / 2)],
    ['a changed byte under the old checksum', (text: string) => text.replace('"containerBudgetBytes":', '"containerBudgetBytes":9')],
    ['a valid checksum over another key', (text: string) => resum(text, (e) => ({ ...e, key: 'other' }))],
    ['a valid checksum and key over a wrong shape', (text: string) => resum(text, (e) => ({ ...e, board: { profile: 'rpi-4b' } }))],
  ])('%s is ignored and replaced', (_what, corrupt) => {
    const { host, cache, set } = setup();
    const first = detectBoardCached(host, undefined, cache);
    const good = fs.readFileSync(cache.file, 'utf8');
    fs.writeFileSync(cache.file, corrupt(good));
    set(MODEL, 'Fresh\0');
    expect(detectBoardCached(host, undefined, cache)).toEqual({ ...first, model: 'Fresh' });
    const rewritten = fs.readFileSync(cache.file, 'utf8');
    expect(rewritten).not.toBe(good);
    set(MODEL, 'Later\0');
    expect(detectBoardCached(host, undefined, cache).model).toBe('Fresh');
  });

  it('without a boot id (a fixture tree) nothing is cached', () => {
    const { host, cache } = setup({ 'proc/sys/kernel/random/boot_id': null });
    expect(detectBoardCached(host, undefined, cache).profile).toBe('rpi-4b');
    expect(fs.existsSync(cache.file)).toBe(false);
  });

  it('a state root that does not exist is not created, and detection still works', () => {
    const { host, root } = setup();
    const missing = path.join(root, 'no', 'such');
    const b = detectBoardCached(host, undefined, { file: boardCacheFile(missing), version: '1' });
    expect(b.profile).toBe('rpi-4b');
    expect(fs.existsSync(path.join(root, 'no'))).toBe(false);
  });
});

/** Rewrites the cache entry and gives it a matching checksum. */
function resum(text: string, edit: (e: Record<string, unknown>) => Record<string, unknown>): string {
  const json = JSON.stringify(edit(JSON.parse(text.slice(text.indexOf('\n') + 1)) as Record<string, unknown>));
  return `${crypto.createHash('sha256').update(json).digest('hex')}\n${json}`;
}
