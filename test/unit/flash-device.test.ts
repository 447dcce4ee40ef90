import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { blockDeviceNumber, checkDiskSafe, writeAndVerify, type BlockHostPaths } from '../../src/flash/device.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/**
 * A fixture /sys and /proc: disks sda (sda1 boot, sda2 root), sdb (sdb1), mmcblk0 (mmcblk0p1, p2) and
 * dm-0 on sdc1, as the kernel lays them out under /sys/devices with /sys/dev/block links.
 */
function host(mountinfo: string, swaps = 'Filename\tType\tSize\tUsed\tPriority\n'): BlockHostPaths {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-blk-'));
  dirs.push(root);
  const sys = path.join(root, 'sys');
  const proc = path.join(root, 'proc');
  fs.mkdirSync(path.join(proc, 'self'), { recursive: true });
  fs.writeFileSync(path.join(proc, 'self', 'mountinfo'), mountinfo);
  fs.writeFileSync(path.join(proc, 'swaps'), swaps);
  fs.mkdirSync(path.join(sys, 'dev', 'block'), { recursive: true });
  const dev = (dir: string, majMin: string, partition: boolean): void => {
    fs.mkdirSync(path.join(dir, 'holders'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'slaves'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dev'), `${majMin}\n`);
    if (partition) fs.writeFileSync(path.join(dir, 'partition'), '1\n');
    fs.symlinkSync(dir, path.join(sys, 'dev', 'block', majMin));
  };
  const disk = (name: string, major: number, minor: number, parts: string[]): string => {
    const d = path.join(sys, 'devices', 'pci0000:00', 'usb', name, 'block', name);
    dev(d, `${major}:${minor}`, false);
    parts.forEach((p, i) => dev(path.join(d, p), `${major}:${minor + i + 1}`, true));
    return d;
  };
  disk('sda', 8, 0, ['sda1', 'sda2']);
  disk('sdb', 8, 16, ['sdb1']);
  disk('mmcblk0', 179, 0, ['mmcblk0p1', 'mmcblk0p2']);
  const sdc = disk('sdc', 8, 32, ['sdc1']);
  const dm = path.join(sys, 'devices', 'virtual', 'block', 'dm-0');
  dev(dm, '254:0', false);
  fs.symlinkSync(path.join(sdc, 'sdc1'), path.join(dm, 'slaves', 'sdc1'));
  fs.writeFileSync(path.join(sdc, 'sdc1', 'holders', 'dm-0'), '');
  return { proc, sys };
}

const line = (id: number, majMin: string, mp: string, src: string): string => `${id} 1 ${majMin} / ${mp} rw,relatime shared:1 - ext4 ${src} rw\n`;
const ROOT_ON_SDA = line(22, '8:2', '/', '/dev/sda2') + line(23, '8:1', '/boot/firmware', '/dev/sda1') + '24 22 0:21 / /proc rw - proc proc rw\n';

describe('block device safety', () => {
  it('lets an unmounted card be written', async () => {
    await expect(checkDiskSafe('/dev/sdb', '8:16', host(ROOT_ON_SDA))).resolves.toBeUndefined();
    await expect(checkDiskSafe('/dev/mmcblk0', '179:0', host(ROOT_ON_SDA))).resolves.toBeUndefined();
  });

  it('refuses the disk the system runs from', async () => {
    await expect(checkDiskSafe('/dev/sda', '8:0', host(ROOT_ON_SDA))).rejects.toThrow(/\/dev\/sda holds the running system's root file system/);
  });

  it('refuses a disk with a mounted partition, naming the mount point', async () => {
    const h = host(ROOT_ON_SDA + line(40, '179:2', '/media/pi/rootfs', '/dev/mmcblk0p2'));
    await expect(checkDiskSafe('/dev/mmcblk0', '179:0', h)).rejects.toMatchObject({ category: 'conflict', message: expect.stringMatching(/mmcblk0p2 is mounted at \/media\/pi\/rootfs/) });
  });

  it('refuses a disk under a mounted device-mapper volume, and the root disk behind one', async () => {
    await expect(checkDiskSafe('/dev/sdc', '8:32', host(ROOT_ON_SDA))).rejects.toThrow(/sdc1 is in use by dm-0/);
    const rootOnDm = line(22, '254:0', '/', '/dev/mapper/root');
    const h = host(rootOnDm);
    fs.rmSync(path.join(h.sys, 'devices', 'pci0000:00', 'usb', 'sdc', 'block', 'sdc', 'sdc1', 'holders', 'dm-0'));
    await expect(checkDiskSafe('/dev/sdc', '8:32', h)).rejects.toThrow(/holds the running system's root file system/);
  });

  it('refuses a partition and a disk with active swap', async () => {
    await expect(checkDiskSafe('/dev/sdb1', '8:17', host(ROOT_ON_SDA))).rejects.toMatchObject({ category: 'invalid', hint: 'use the disk: /dev/sdb' });
    const h = host(ROOT_ON_SDA, 'Filename\tType\tSize\tUsed\tPriority\n/dev/sdb1\tpartition\t1024\t0\t-2\n');
    await expect(checkDiskSafe('/dev/sdb', '8:16', h)).rejects.toThrow(/sdb1 is in use as swap/);
  });

  it('only block devices are devices', async () => {
    await expect(blockDeviceNumber('/dev/null')).rejects.toThrow(/not a block device/);
    await expect(blockDeviceNumber('/nonexistent/sdz')).rejects.toMatchObject({ category: 'notFound' });
  });
});

describe('write and verify', () => {
  it('writes the image over the start of the target, keeps what lies beyond, and reads it back', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-wv-'));
    dirs.push(d);
    const image = Buffer.alloc(9 << 20);
    for (let i = 0; i < image.length; i += 4096) image.writeUInt32LE(i, i);
    fs.writeFileSync(path.join(d, 'img'), image);
    fs.writeFileSync(path.join(d, 'card'), Buffer.alloc(10 << 20, 0xee));
    const r = await writeAndVerify(path.join(d, 'img'), path.join(d, 'card'));
    expect(r.bytes).toBe(image.length);
    const card = fs.readFileSync(path.join(d, 'card'));
    expect(card.subarray(0, image.length).equals(image)).toBe(true);
    expect(card[image.length]).toBe(0xee);
  });
});
