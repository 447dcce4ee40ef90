import { describe, expect, it } from 'vitest';
import { checkPlatforms, pullDecision } from '../../src/agent/reconcile/pull-policy.js';
import type { ImageRecord } from '../../src/store/images.js';
import { servicePullPolicy } from '../../src/compose/service-pull.js';
import type { BerthError } from '../../src/errors.js';
import { appModel } from '../helpers/app-model.js';
import { refusal, service } from '../helpers/compose-services.js';

// compose's platform and pull_policy: read once by the compose stage, decided on the device by the
// deployer (berth deploy and the agent alike).

const HOUR = 3_600_000;
const image = (platform: string, pulledAt: number): ImageRecord => ({ name: 'reg/app:1', repository: 'reg/app', manifestDigest: 'sha256:m', configDigest: 'sha256:c', platform, size: 1, pulledAt });

describe('pull_policy and platform in a compose file', () => {
  it('are read into the model, in compose\'s spellings, platform normalized', async () => {
    const policy = async (p: string) => (await service(`services:\n  a:\n    image: x\n    pull_policy: ${p}\n`)).pullPolicy;
    expect(await policy('always')).toBe('always');
    expect(await policy('never')).toBe('never');
    expect(await policy('missing')).toBe('missing');
    expect(await policy('if_not_present')).toBe('missing');
    expect(await policy('daily')).toEqual({ everyMs: 24 * HOUR });
    expect(await policy('weekly')).toEqual({ everyMs: 7 * 24 * HOUR });
    expect(await policy('every_12h')).toEqual({ everyMs: 12 * HOUR });
    expect((await service('services:\n  a:\n    image: x\n    platform: linux/aarch64\n')).platform).toBe('linux/arm64');
  });

  it('refuse build (with what to do instead), an unknown policy and a bad platform, naming the key', async () => {
    const err = await refusal('services:\n  a:\n    image: x\n    pull_policy: build\n');
    expect(err).toBe('services.a.pull_policy: berth runs images and does not build them');
    let hint: string | undefined;
    try {
      servicePullPolicy('a', { image: 'x', pull_policy: 'build' });
    } catch (e) {
      hint = (e as BerthError).hint;
    }
    expect(hint).toMatch(/build the image for your boards' platforms in CI, push it/);
    expect(await refusal('services:\n  a:\n    image: x\n    pull_policy: every_soon\n')).toMatch(/^services\.a\.pull_policy: "soon" is not a duration/);
    expect(await refusal('services:\n  a:\n    image: x\n    pull_policy: hourly\n')).toMatch(/^desired state is invalid: services\.a\.pull_policy: must match pattern/);
    expect(await refusal('services:\n  a:\n    image: x\n    platform: linux/arm/v7/extra\n')).toMatch(/^desired state is invalid: services\.a\.platform|^services\.a\.platform/);
  });
});

describe('pullDecision', () => {
  const svc = (pullPolicy?: 'always' | 'never' | 'missing' | { everyMs: number }, platform?: string) => ({ name: 'web', image: 'reg/app:1', ...(pullPolicy && { pullPolicy }), ...(platform && { platform }) });
  const now = 100 * HOUR;

  it('missing (the default) pulls only when there is no local copy of the platform asked for', () => {
    expect(pullDecision(svc(), undefined, now)).toBe('pull');
    expect(pullDecision(svc(), image('linux/amd64', 0), now)).toBe('local');
    expect(pullDecision(svc('missing', 'linux/arm64'), image('linux/amd64', now), now)).toBe('pull');
    expect(pullDecision(svc('missing', 'linux/arm64'), image('linux/arm64', 0), now)).toBe('local');
  });

  it('always pulls; never uses the local copy or refuses naming the service and image', () => {
    expect(pullDecision(svc('always'), image('linux/amd64', now), now)).toBe('pull');
    expect(pullDecision(svc('never'), image('linux/amd64', 0), now)).toBe('local');
    expect(() => pullDecision(svc('never'), undefined, now)).toThrow('service web: image reg/app:1 is not on this device, and its pull_policy is never');
    expect(() => pullDecision(svc('never', 'linux/arm64'), image('linux/amd64', 0), now)).toThrow(/image reg\/app:1 \(linux\/arm64\) is not on this device/);
  });

  it('every_<duration> pulls again once the local copy is older than the period', () => {
    expect(pullDecision(svc({ everyMs: 24 * HOUR }), image('linux/amd64', now - 23 * HOUR), now)).toBe('local');
    expect(pullDecision(svc({ everyMs: 24 * HOUR }), image('linux/amd64', now - 24 * HOUR), now)).toBe('pull');
    expect(pullDecision(svc({ everyMs: 24 * HOUR }), undefined, now)).toBe('pull');
  });
});

describe('checkPlatforms', () => {
  const board = { profileName: 'Raspberry Pi 3', platforms: ['linux/arm64', 'linux/arm/v7', 'linux/arm/v6'] };
  const withPlatform = (platform: string) => {
    const app = appModel({ services: { web: {} } });
    return { ...app, services: new Map([['web', { ...app.services.get('web')!, platform }]]) };
  };

  it('accepts a platform the board runs and refuses another, naming the service, the platform and what the board runs', () => {
    expect(() => checkPlatforms(withPlatform('linux/arm/v7'), board)).not.toThrow();
    expect(() => checkPlatforms(appModel({ services: { web: {} } }), board)).not.toThrow();
    expect(() => checkPlatforms(withPlatform('linux/amd64'), board)).toThrow('service web: platform linux/amd64 cannot run on this board (Raspberry Pi 3 runs linux/arm64, linux/arm/v7, linux/arm/v6)');
  });
});
