import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRELOAD_REVISION } from '../../src/agent/preload.js';
import { loadProfiles } from '../../src/board/profiles.js';
import { cardPlatforms, readPreloadApp } from '../../src/flash/preload.js';
import validateDesired from '../../src/generated/desired.validate.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-preload-unit-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('cardPlatforms: what a preloaded card carries runs on every board of its userland', () => {
  const profiles = loadProfiles();
  it('a 64-bit card: arm64 first, then the 32-bit variants every arm64 board runs', () => {
    expect(cardPlatforms('arm64', profiles)).toEqual(['linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
  });
  it('a 32-bit card may boot on a Pi Zero W or a Pi 1: ARMv6 at most, not v7', () => {
    expect(cardPlatforms('arm', profiles)).toEqual(['linux/arm/v6', 'linux/arm/v5']);
  });
});

describe('readPreloadApp', () => {
  it('reads a compose file as fleet deploy does, for the card\'s state root', async () => {
    const file = path.join(work, 'compose.yaml');
    fs.writeFileSync(file, 'services:\n  web:\n    image: registry.example:5000/app:1\n    volumes: ["./data:/data"]\n');
    const app = await readPreloadApp(file, {}, () => undefined);
    expect(app.services.get('web')!.image).toBe('registry.example:5000/app:1');
    // A relative bind lands in the app's data directory under the board's state root.
    expect(app.services.get('web')!.run.volumes).toContainEqual(expect.objectContaining({ kind: 'bind', source: `/var/lib/berth/apps/${app.name}/data` }));
  });

  it('reads a desired-state file (recognised by its revision), and refuses a bad one naming the key', async () => {
    const file = path.join(work, 'desired.json');
    fs.writeFileSync(file, JSON.stringify({ revision: 7, name: 'kiosk', services: { ui: { image: 'r.example/ui:2' } } }));
    expect((await readPreloadApp(file, {}, () => undefined)).name).toBe('kiosk');
    fs.writeFileSync(file, JSON.stringify({ revision: 7, services: { ui: { image: 'r.example/ui:2', colour: 'red' } } }));
    await expect(readPreloadApp(file, {}, () => undefined)).rejects.toThrow(/colour/);
  });
});

describe('the preloaded revision', () => {
  it('is below every revision a fleet may send, and one a device may report', () => {
    expect(validateDesired({ revision: PRELOAD_REVISION, services: {} })).toBe(false);
    expect(validateDesired({ revision: PRELOAD_REVISION + 1, services: {} })).toBe(true);
    const reported = JSON.parse(fs.readFileSync(new URL('../../src/protocol/schemas/reported.json', import.meta.url), 'utf8')) as { properties: { revision: { minimum: number } } };
    expect(reported.properties.revision.minimum).toBeLessThanOrEqual(PRELOAD_REVISION);
  });
});
