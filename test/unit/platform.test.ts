import { describe, expect, it } from 'vitest';
import { loadProfiles } from '../../src/board/profiles.js';
import { MEDIA, selectFromIndex, type Descriptor, type ImageIndex } from '../../src/image/manifest.js';
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

describe('index selection for an ARMv6 board (containerd fallback v6 → v5)', () => {
  const manifest = (architecture: string, variant?: string): Descriptor => ({
    mediaType: MEDIA.ociManifest,
    digest: `sha256:${Buffer.from(architecture + (variant ?? '')).toString('hex').padEnd(64, '0')}`,
    size: 100,
    platform: { os: 'linux', architecture, ...(variant !== undefined && { variant }) },
  });
  // Debian's official images: arm/v5 and arm/v7, no arm/v6.
  const debianLike: ImageIndex = { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [manifest('amd64'), manifest('arm', 'v5'), manifest('arm', 'v7'), manifest('arm64', 'v8')] };
  const zeroW = loadProfiles().find((p) => p.id === 'rpi-zero-w')!.platforms.arm!.map(parsePlatform);

  it('a Zero W takes arm/v5 when the index has no arm/v6, never arm/v7', () => {
    expect(formatPlatform(selectFromIndex(debianLike, zeroW, 'debian:bookworm').platform)).toBe('linux/arm/v5');
  });

  it('and still prefers arm/v6 when the index has it', () => {
    const withV6: ImageIndex = { ...debianLike, manifests: [...debianLike.manifests, manifest('arm', 'v6')] };
    expect(formatPlatform(selectFromIndex(withV6, zeroW, 'busybox').platform)).toBe('linux/arm/v6');
  });
});
