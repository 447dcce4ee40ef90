import { describe, expect, it } from 'vitest';
import { formatPlatform, isNormalizedPlatform, parsePlatform } from '../../src/image/platform.js';

describe('platform normalization (containerd semantics)', () => {
  it.each([
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['arm64', 'linux/arm64'],
    ['linux/x86_64', 'linux/amd64'],
    ['x86-64', 'linux/amd64'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['linux/arm/6', 'linux/arm/v6'],
    ['linux/arm/v6', 'linux/arm/v6'],
    ['arm/v5', 'linux/arm/v5'],
    ['linux/i386', 'linux/386'],
    ['LINUX/ARM64', 'linux/arm64'],
  ])('%s → %s', (input, expected) => {
    expect(formatPlatform(parsePlatform(input))).toBe(expected);
  });

  it.each(['', 'linux/', '/arm64', 'linux/arm/v7/extra', 'linux/ar m'])('rejects %j with an invalid-input error', (spec) => {
    expect(() => parsePlatform(spec)).toThrow(/invalid platform/);
  });

  it('knows the normalized form', () => {
    expect(isNormalizedPlatform('linux/arm/v7')).toBe(true);
    expect(isNormalizedPlatform('linux/arm')).toBe(false);
    expect(isNormalizedPlatform('linux/aarch64')).toBe(false);
  });
});
