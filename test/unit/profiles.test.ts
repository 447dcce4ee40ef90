import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILTIN_PROFILES_DIR, loadProfiles, type BoardProfile } from '../../src/board/profiles.js';

const tmpDirs: string[] = [];
afterEach(() => tmpDirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A profiles dir holding the real schema and one profile edited by `edit`. */
function dirWith(edit: (p: Record<string, unknown>) => void, fileName = 'rpi-4b.json'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-profiles-'));
  tmpDirs.push(dir);
  fs.copyFileSync(path.join(BUILTIN_PROFILES_DIR, 'schema.json'), path.join(dir, 'schema.json'));
  const p = JSON.parse(fs.readFileSync(path.join(BUILTIN_PROFILES_DIR, 'rpi-4b.json'), 'utf8')) as Record<string, unknown>;
  edit(p);
  fs.writeFileSync(path.join(dir, fileName), JSON.stringify(p));
  return dir;
}

describe('shipped board profiles', () => {
  const profiles = loadProfiles();
  const byId = new Map(profiles.map((p) => [p.id, p]));

  it('cover the boards berth promises', () => {
    for (const id of ['rpi-zero-w', 'rpi-zero-2-w', 'rpi-3b', 'rpi-3b-plus', 'rpi-4b', 'rpi-5', 'rpi-cm4', 'beaglebone-black', 'orangepi-5', 'jetson-nano', 'generic-arm64', 'generic-armv7', 'generic-amd64']) {
      expect(byId.has(id), id).toBe(true);
    }
  });

  it('never offer arm/v7 to an ARMv6 board', () => {
    for (const id of ['rpi-zero-w', 'rpi-1', 'generic-armv6']) {
      const all = Object.values((byId.get(id) as BoardProfile).platforms).flat();
      expect(all, id).not.toContain('linux/arm/v7');
    }
  });

  it('prefer arm64, then arm/v7, arm/v6, arm/v5 on a 64-bit userland, and arm/v7 first on a 32-bit one', () => {
    for (const p of profiles.filter((x) => 'arm64' in x.platforms)) {
      expect(p.platforms.arm64, p.id).toEqual(['linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
      if (p.platforms.arm) expect(p.platforms.arm, p.id).toEqual(['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
    }
  });

  it('let every ARMv6 board fall back to arm/v5 (Debian offers arm/v5 and arm/v7, no arm/v6)', () => {
    for (const id of ['rpi-zero-w', 'rpi-1', 'generic-armv6']) {
      expect((byId.get(id) as BoardProfile).platforms.arm, id).toEqual(['linux/arm/v6', 'linux/arm/v5']);
    }
  });

  it('give small boards the tightest write budget class and a reserve for the OS and agent', () => {
    expect(byId.get('rpi-zero-2-w')?.storage.class).toBe('sd');
    for (const p of profiles) expect(p.reserve.osBytes + p.reserve.agentBytes, p.id).toBeGreaterThan(64 * 1024 * 1024);
  });
});

describe('profile validation', () => {
  it.each<[string, (p: Record<string, unknown>) => void, RegExp]>([
    ['an unknown key', (p) => { p.colour = 'red'; }, /is invalid: colour: unknown key/],
    ['a missing reserve', (p) => { delete p.reserve; }, /top level: missing required key "reserve"/],
    ['a non-normalized platform', (p) => { p.platforms = { arm: ['linux/arm'] }; }, /pattern|not a normalized OCI platform/],
    ['an alias platform', (p) => { p.platforms = { arm64: ['linux/arm64/v8'] }; }, /"linux\/arm64\/v8" is not a normalized OCI platform/],
    ['an arm chain without arm/v5', (p) => { p.platforms = { arm: ['linux/arm/v7', 'linux/arm/v6'] }; }, /platforms\.arm: linux\/arm\/v6 must be followed by linux\/arm\/v5/],
    ['an arm chain skipping arm/v6', (p) => { p.platforms = { arm: ['linux/arm/v7', 'linux/arm/v5'] }; }, /platforms\.arm: linux\/arm\/v7 must be followed by linux\/arm\/v6/],
    ['a broken model regex', (p) => { (p.match as Record<string, unknown>).model = '(['; }, /not a valid regular expression/],
    ['high above max', (p) => { (p.containerDefaults as Record<string, number>).memoryHighPercent = 90; }, /memoryHighPercent exceeds memoryMaxPercent/],
    ['an unknown storage class', (p) => { p.storage = { class: 'floppy' }; }, /storage\.class: must be one of "sd", "emmc"/],
  ])('rejects %s, naming the file', (_name, edit, message) => {
    const dir = dirWith(edit);
    expect(() => loadProfiles(dir)).toThrow(message);
    expect(() => loadProfiles(dir)).toThrow(/rpi-4b\.json/);
  });

  it('rejects an id that does not match its file name', () => {
    expect(() => loadProfiles(dirWith(() => {}, 'other.json'))).toThrow(/id "rpi-4b" does not match the file name/);
  });

  it('rejects invalid JSON with a clear message', () => {
    const dir = dirWith(() => {});
    fs.writeFileSync(path.join(dir, 'rpi-4b.json'), '{"id": "rpi-4b",');
    expect(() => loadProfiles(dir)).toThrow(/is not valid JSON/);
  });
});
