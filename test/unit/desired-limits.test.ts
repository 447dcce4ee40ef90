import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { appFromMessage as parseDesired, checkApp as checkDesired } from '../../src/compose/normalize.js';
import { MAX_PAYLOAD_BYTES, MAX_REVISION } from '../../src/protocol/validate.js';

// Issue 23 item 8: values that passed the desired-state schema but could never run (and ended as a
// rolled-back deploy) are refused by the schema, naming the key. Item 4: the revision is bounded, and
// an invalid payload's revision is only read when it is in range and the payload within the limit.

const desired = (svc: Record<string, unknown>, revision = 1) => JSON.stringify({ revision, services: { web: { image: 'registry.local/app:v1', ...svc } } });

describe('desired-state limits', () => {
  it.each([
    ['image with a NUL', { image: 'registry.local/app:v1\u0000' }, 'services.web.image'],
    ['image with a newline', { image: 'registry.local/app\n:v1' }, 'services.web.image'],
    ['image with a space', { image: 'registry.local/app :v1' }, 'services.web.image'],
    ['user with a NUL', { user: 'root\u0000' }, 'services.web.user'],
    ['user with an escape sequence', { user: 'daemon\u001b[2J' }, 'services.web.user'],
    ['user with two colons', { user: '1:2:3' }, 'services.web.user'],
    ['relative working_dir', { working_dir: 'srv/app' }, 'services.web.working_dir'],
    ['working_dir with a NUL', { working_dir: '/srv\u0000' }, 'services.web.working_dir'],
    ['mem_limit 1e308', { mem_limit: 1e308 }, 'services.web.mem_limit'],
    ['mem_reservation 2^60', { mem_reservation: 2 ** 60 }, 'services.web.mem_reservation'],
    ['pids_limit 1e20', { pids_limit: 1e20 }, 'services.web.pids_limit'],
    ['a 29-digit cpus string', { cpus: '1'.repeat(29) }, 'services.web.cpus'],
    ['cpus 1e28', { cpus: 1e28 }, 'services.web.cpus'],
  ])('refuses %s, naming the key', (_what, svc, key) => {
    expect(() => parseDesired(desired(svc))).toThrow(new RegExp(`desired state is invalid: .*${key.replace(/\./g, '\\.')}`));
  });

  it('still takes the ordinary forms of those fields', () => {
    for (const svc of [
      { image: '127.0.0.1:5000/acme/web@sha256:' + 'a'.repeat(64) }, { image: 'busybox' }, { image: 'ghcr.io/acme/Web_app:1.2.3-rc.1' },
      { user: 'nobody' }, { user: '1000:1000' }, { user: 'www-data:www-data' },
      { working_dir: '/' }, { working_dir: '/srv/my app' },
      { mem_limit: 64 * 1024 * 1024 }, { mem_limit: '1.5g' }, { pids_limit: -1 }, { pids_limit: 4194304 },
      { cpus: 0.5 }, { cpus: '1.25' }, { cpus: 9999 },
    ]) {
      expect(() => parseDesired(desired(svc)), JSON.stringify(svc)).not.toThrow();
    }
  });

  it('bounds the revision at 2^31 − 1, the same in the schema and in MAX_REVISION', () => {
    const schema = JSON.parse(fs.readFileSync(new URL('../../src/protocol/schemas/desired.json', import.meta.url), 'utf8')) as { properties: { revision: { maximum: number } } };
    expect(schema.properties.revision.maximum).toBe(MAX_REVISION);
    expect(MAX_REVISION).toBe(2 ** 31 - 1);
    expect(parseDesired(desired({}, MAX_REVISION)).revision).toBe(MAX_REVISION);
    expect(() => parseDesired(desired({}, MAX_REVISION + 1))).toThrow(/revision: must be <= 2147483647/);
  });

  it('an invalid payload names its revision only when that is in range and the payload within the limit', () => {
    const bad = { mem_limit: '12q' };
    expect(checkDesired(desired(bad, 42))).toMatchObject({ ok: false, revision: 42 });
    expect(checkDesired(desired(bad, MAX_REVISION))).toMatchObject({ ok: false, revision: MAX_REVISION });
    for (const revision of [Number.MAX_SAFE_INTEGER, MAX_REVISION + 1, 0, -3, 1.5]) {
      expect(checkDesired(desired(bad, revision))).not.toHaveProperty('revision');
    }
    const oversized = checkDesired(`{"revision":5,"services":{},"pad":"${'x'.repeat(MAX_PAYLOAD_BYTES)}"}`);
    expect(oversized).toEqual({ ok: false, error: expect.objectContaining({ message: expect.stringMatching(/over the 262144-byte limit/) }) });
    expect(checkDesired('[5]')).not.toHaveProperty('revision');
    expect(checkDesired(desired({}, 3))).toMatchObject({ ok: true, desired: { revision: 3 } });
  });
});
