import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { detectBoard } from '../../src/board/index.js';
import { BerthError } from '../../src/errors.js';
import { elfHeader, fixtureHost, variantHost } from '../helpers/host-tree.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));
function variant(base: string | undefined, files: Record<string, string | Buffer | null>) {
  const v = variantHost(base, files);
  cleanups.push(v.cleanup);
  return v.host;
}

describe('board detection from fixture hosts', () => {
  it('Zero W (9000c1): arm/v6 then arm/v5, never v7, 512 MiB, SD', () => {
    const b = detectBoard(fixtureHost('rpi-zero-w'));
    expect(b).toMatchObject({ profile: 'rpi-zero-w', matchedBy: 'revision', model: 'Raspberry Pi Zero W Rev 1.1', memoryBytes: 512 * MiB, cpus: 1, cpuIsa: 'armv6' });
    expect(b.platforms).toEqual(['linux/arm/v6', 'linux/arm/v5']);
    expect(b.memTotalBytes).toBe(439504 * 1024);
    expect(b.storage).toMatchObject({ class: 'sd', source: 'detected', device: 'mmcblk0p2', logMaxBytes: 1 * MiB });
  });

  it('Zero 2 W (902120) with a 64-bit userland: arm64, then arm/v7, arm/v6', () => {
    const b = detectBoard(fixtureHost('rpi-zero-2-w'));
    expect(b).toMatchObject({ profile: 'rpi-zero-2-w', memoryBytes: 512 * MiB, cpus: 4, userland: { arch: 'arm64', bits: 64, source: 'elf' } });
    expect(b.platforms).toEqual(['linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
    // 512 MiB board: the budget is what the kernel sees minus the reserve, and defaults are shares of it.
    expect(b.containerBudgetBytes).toBe(425028 * 1024 - (96 + 48) * MiB);
    expect(b.containerDefaults.memoryMaxBytes).toBeLessThanOrEqual(b.containerBudgetBytes / 2);
    expect(b.containerDefaults.memoryHighBytes).toBeLessThan(b.containerDefaults.memoryMaxBytes);
  });

  it('Pi 4B 4 GB (c03114): 4 GiB installed, mountinfo /dev/root resolved through sysfs', () => {
    const b = detectBoard(fixtureHost('rpi-4b-4g'));
    expect(b).toMatchObject({ profile: 'rpi-4b', memoryBytes: 4 * GiB, cpus: 4, revision: { code: 'c03114', type: '4B', processor: 'BCM2711' } });
    expect(b.platforms).toEqual(['linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
    expect(b.storage).toMatchObject({ class: 'sd', device: 'mmcblk0p2' });
  });

  it('Pi 4B on a 32-bit userland over a 64-bit kernel: arm/v7 then arm/v6, no arm64', () => {
    const b = detectBoard(variant('rpi-4b-4g', { 'proc/self/exe': elfHeader(32, 40) }));
    expect(b.profile).toBe('rpi-4b');
    expect(b.userland).toMatchObject({ arch: 'arm', bits: 32 });
    expect(b.kernelArch).toBe('aarch64');
    expect(b.platforms).toEqual(['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
    expect(b.notes.join()).toMatch(/32-bit userland on a 64-bit CPU/);
  });

  it('Pi 5 8 GB (d04170): booted from NVMe, storage class detected as nvme', () => {
    const b = detectBoard(fixtureHost('rpi-5-8g'));
    expect(b).toMatchObject({ profile: 'rpi-5', memoryBytes: 8 * GiB, cpus: 4 });
    expect(b.platforms).toEqual(['linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
    expect(b.storage).toMatchObject({ class: 'nvme', source: 'detected', logMaxBytes: 16 * MiB });
  });

  it('BeagleBone Black by device-tree compatible, with an eMMC root; Revision 0000 is not read as a Pi code', () => {
    const b = detectBoard(fixtureHost('beaglebone-black'));
    expect(b).toMatchObject({ profile: 'beaglebone-black', matchedBy: 'compatible', cpuIsa: 'armv7', storage: { class: 'emmc' } });
    expect(b.revision).toBeUndefined();
    expect(b.platforms).toEqual(['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
  });

  it('an unknown arm64 board falls back to generic-arm64 with a note naming what was seen', () => {
    const b = detectBoard(fixtureHost('unknown-arm64'));
    expect(b).toMatchObject({ profile: 'generic-arm64', matchedBy: 'fallback', model: 'Pine64 RockPro64 v2.1', cpus: 6 });
    expect(b.notes.join('\n')).toMatch(/board not recognised \(model "Pine64 RockPro64 v2.1"; compatible pine64,rockpro64-v2.1.*generic-arm64/);
    expect(b.storage).toMatchObject({ class: 'sd', source: 'profile' });
  });

  it('an unknown ARMv6 board (no device tree) falls back to generic-armv6, never arm/v7', () => {
    const host = variant(undefined, {
      'proc/cpuinfo': 'processor\t: 0\nmodel name\t: ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n',
      'proc/meminfo': 'MemTotal: 233000 kB\n',
      'proc/self/exe': elfHeader(32, 40),
    });
    const b = detectBoard(host);
    expect(b.profile).toBe('generic-armv6');
    expect(b.platforms).toEqual(['linux/arm/v6', 'linux/arm/v5']);
  });

  it('a Pi matched by model name alone when the revision code is unknown', () => {
    const host = variant('rpi-4b-4g', { 'proc/cpuinfo': 'processor\t: 0\nCPU architecture: 8\n\nRevision\t: c031f4\n', 'proc/device-tree/compatible': null });
    const b = detectBoard(host);
    expect(b).toMatchObject({ profile: 'rpi-4b', matchedBy: 'model' });
    expect(b.notes.join()).toMatch(/unknown Raspberry Pi revision code c031f4/);
  });

  it('the hybrid amd64 host is a generic amd64 machine named from DMI', () => {
    const b = detectBoard(fixtureHost('hybrid-amd64'));
    expect(b).toMatchObject({ profile: 'generic-amd64', model: 'QEMU Standard PC (Q35 + ICH9, 2009)', cpus: 2, platforms: ['linux/amd64', 'linux/386'] });
  });

  it('a plain copy of a board\'s /proc (no self/exe) detects the board from the kernel\'s machine name, not from this host', () => {
    const zero = detectBoard(variant('rpi-zero-w', { 'proc/self/exe': null }));
    expect(zero).toMatchObject({ profile: 'rpi-zero-w', userland: { arch: 'arm', bits: 32, source: 'kernel' }, platforms: ['linux/arm/v6', 'linux/arm/v5'] });
    expect(zero.notes.join()).toMatch(/no proc\/self\/exe: userland taken from the kernel \(arm\)/);
    const pi5 = detectBoard(variant('rpi-5-8g', { 'proc/self/exe': null }));
    expect(pi5).toMatchObject({ profile: 'rpi-5', userland: { arch: 'arm64', bits: 64, source: 'kernel' } });
  });

  it('a copied self/exe symlink is not followed onto this machine\'s binaries', () => {
    const v = variantHost('rpi-zero-w', { 'proc/self/exe': null });
    cleanups.push(v.cleanup);
    fs.symlinkSync(process.execPath, path.join(v.dir, 'proc/self/exe'));
    expect(detectBoard(v.host)).toMatchObject({ profile: 'rpi-zero-w', userland: { arch: 'arm', source: 'kernel' } });
  });

  it('without kernel/arch the copy falls back to cpuinfo\'s CPU architecture, and with neither it says what is missing', () => {
    expect(detectBoard(variant('rpi-zero-2-w', { 'proc/self/exe': null, 'proc/sys/kernel/arch': null })).userland).toMatchObject({ arch: 'arm64', source: 'kernel' });
    const bare = variant(undefined, { 'proc/cpuinfo': 'processor\t: 0\n', 'proc/meminfo': 'MemTotal: 233000 kB\n' });
    expect(() => detectBoard(bare)).toThrow(/cannot tell the userland of the host tree .*proc\/sys\/kernel\/arch/);
  });

  it('a userland no profile lists for the board is a clear host error', () => {
    expect(() => detectBoard(variant('rpi-zero-w', { 'proc/self/exe': elfHeader(64, 183) }))).toThrow(/Raspberry Pi Zero W does not run a arm64 userland/);
  });
});

describe('bad host data gives a clear error, not a crash', () => {
  const expectHostError = (fn: () => unknown, message: RegExp): void => {
    let caught: unknown;
    try {
      fn();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(BerthError);
    expect((caught as BerthError).category).toBe('host');
    expect((caught as BerthError).message).toMatch(message);
  };

  it('garbage cpuinfo', () => {
    expectHostError(() => detectBoard(variant('rpi-zero-2-w', { 'proc/cpuinfo': Buffer.from([0x7f, 0x45, 0x00, 0x13, 0xff, 0xfe, 0x0a]) })), /cpuinfo is not text/);
  });

  it('truncated cpuinfo', () => {
    expectHostError(() => detectBoard(variant('rpi-zero-2-w', { 'proc/cpuinfo': 'processor\t: 0\nBogoMIPS\t: 38.40\nFeat' })), /line 3 .*truncated/);
  });

  it('cpuinfo with a garbage Revision', () => {
    expectHostError(() => detectBoard(variant('rpi-4b-4g', { 'proc/cpuinfo': 'processor\t: 0\n\nRevision\t: not-a-code\n' })), /malformed Revision "not-a-code"/);
  });

  it('missing cpuinfo or meminfo', () => {
    expectHostError(() => detectBoard(variant('rpi-4b-4g', { 'proc/cpuinfo': null })), /cpuinfo does not exist/);
    expectHostError(() => detectBoard(variant('rpi-4b-4g', { 'proc/meminfo': 'garbage\n' })), /MemTotal/);
  });
});
