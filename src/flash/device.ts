import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { parseMountinfo } from '../host/mountinfo.js';
import { execTool } from './exec.js';

/** Where the kernel's views live; tests point these at fixture trees. */
export interface BlockHostPaths {
  readonly proc: string;
  readonly sys: string;
}

export const HOST_BLOCK_PATHS: BlockHostPaths = { proc: '/proc', sys: '/sys' };

/** The major:minor of a block device node; throws BerthError(invalid) for anything that is not a block device. */
export async function blockDeviceNumber(device: string): Promise<string> {
  let st;
  try {
    st = await fs.stat(device);
  } catch (err) {
    throw new BerthError(isErrno(err, 'ENOENT') ? 'notFound' : 'host', `cannot use ${device}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (!st.isBlockDevice()) throw new BerthError('invalid', `${device} is not a block device`, { hint: 'to write an image file, use --out FILE' });
  // Linux dev_t: major in bits 8–19 (and 32+), minor in bits 0–7 and 20–31.
  const rdev = st.rdev;
  const major = ((rdev >> 8) & 0xfff) | Math.floor(rdev / 2 ** 32) & ~0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & ~0xff);
  return `${major}:${minor}`;
}

async function readTrim(file: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false);
}

/** The sysfs directory of a block device number, or undefined (not a block device the kernel knows: tmpfs, nfs …). */
async function sysNode(host: BlockHostPaths, majMin: string): Promise<string | undefined> {
  try {
    return await fs.realpath(path.join(host.sys, 'dev', 'block', majMin));
  } catch {
    return undefined;
  }
}

/** Whole disks a block device sits on: a partition's parent, through device-mapper/RAID slaves. */
async function disksUnder(host: BlockHostPaths, node: string, depth = 0): Promise<string[]> {
  const slaves = await fs.readdir(path.join(node, 'slaves')).catch(() => [] as string[]);
  if (slaves.length > 0 && depth < 8) {
    const out: string[] = [];
    for (const s of slaves) {
      const n = await fs.realpath(path.join(node, 'slaves', s)).catch(() => undefined);
      if (n) out.push(...(await disksUnder(host, n, depth + 1)));
    }
    return out;
  }
  return [path.basename((await exists(path.join(node, 'partition'))) ? path.dirname(node) : node)];
}

/**
 * Refuses (BerthError conflict) to let a disk be overwritten when it is a partition rather than a whole
 * disk, when it or one of its partitions is mounted, used as swap or held by device-mapper/RAID, or when
 * it holds the running system's root file system. `majMin` is the disk's device number.
 */
export async function checkDiskSafe(device: string, majMin: string, host: BlockHostPaths = HOST_BLOCK_PATHS): Promise<void> {
  const node = await sysNode(host, majMin);
  if (!node) throw new BerthError('host', `${device} (${majMin}) is not in ${host.sys}/dev/block`);
  const disk = path.basename(node);
  if (await exists(path.join(node, 'partition'))) {
    throw new BerthError('invalid', `${device} is a partition (${disk}); berth flash writes whole disks`, { hint: `use the disk: /dev/${path.basename(path.dirname(node))}` });
  }
  const members = new Map<string, string>([[majMin, disk]]);
  for (const e of await fs.readdir(node, { withFileTypes: true })) {
    if (!e.isDirectory() || !(await exists(path.join(node, e.name, 'partition')))) continue;
    const dev = await readTrim(path.join(node, e.name, 'dev'));
    if (dev) members.set(dev, e.name);
  }
  for (const name of members.values()) {
    const dir = name === disk ? node : path.join(node, name);
    const holders = await fs.readdir(path.join(dir, 'holders')).catch(() => [] as string[]);
    if (holders.length > 0) throw new BerthError('conflict', `${device}: ${name} is in use by ${holders.join(', ')} (device-mapper, RAID or LVM); refusing to overwrite it`);
  }
  const mountinfo = await fs.readFile(path.join(host.proc, 'self', 'mountinfo'), 'utf8').catch((err: unknown) => {
    throw new BerthError('host', `cannot read ${host.proc}/self/mountinfo: ${String(err)}`, { cause: err });
  });
  for (const m of parseMountinfo(mountinfo)) {
    if (m.majMin.startsWith('0:')) continue;
    const direct = members.get(m.majMin);
    const mnode = direct === undefined ? await sysNode(host, m.majMin) : undefined;
    const onDisk = direct !== undefined || (mnode !== undefined && (await disksUnder(host, mnode)).includes(disk));
    if (!onDisk) continue;
    if (m.mountPoint === '/') throw new BerthError('conflict', `${device} holds the running system's root file system; refusing to overwrite it`);
    throw new BerthError('conflict', `${device}: ${direct ?? m.source} is mounted at ${m.mountPoint}; unmount it first (umount ${m.mountPoint})`);
  }
  const swaps = (await readTrim(path.join(host.proc, 'swaps'))) ?? '';
  for (const line of swaps.split('\n').slice(1)) {
    const name = path.basename(line.split(/\s+/)[0] ?? '');
    if ([...members.values()].includes(name)) throw new BerthError('conflict', `${device}: ${name} is in use as swap; swapoff it first`);
  }
}

/**
 * Writes an image file over a target (a block device, or any file) from its first byte, fsyncs, then reads
 * the image's length back and compares SHA-256 digests. A block device is opened O_EXCL, which the kernel
 * refuses while anything has it mounted. Throws BerthError(resource) on a short or mismatching read-back.
 */
export async function writeAndVerify(image: string, target: string, opts: { exclusive?: boolean } = {}): Promise<{ bytes: number; sha256: string }> {
  const src = await fs.open(image, 'r');
  let dst: fs.FileHandle;
  try {
    dst = await fs.open(target, fs.constants.O_WRONLY | (opts.exclusive ? fs.constants.O_EXCL : 0));
  } catch (err) {
    await src.close();
    throw new BerthError(isErrno(err, 'EBUSY') ? 'conflict' : isErrno(err, 'EACCES') ? 'auth' : 'host', `cannot open ${target} for writing: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  const chunk = Buffer.allocUnsafe(4 << 20);
  const written = createHash('sha256');
  let bytes = 0;
  try {
    for (;;) {
      const { bytesRead } = await src.read(chunk, 0, chunk.length, bytes);
      if (bytesRead === 0) break;
      const part = chunk.subarray(0, bytesRead);
      written.update(part);
      await dst.write(part, 0, bytesRead, bytes);
      bytes += bytesRead;
    }
    await dst.sync();
  } catch (err) {
    throw new BerthError(isErrno(err, 'ENOSPC') ? 'resource' : 'host', `writing ${target} failed after ${bytes} bytes: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  } finally {
    await src.close();
    await dst.close();
  }
  const sha256 = written.digest('hex');
  // Drop the device's page cache so the read-back comes from the card (needs CAP_SYS_ADMIN; a file has none).
  if (opts.exclusive) await execTool('blockdev', ['--flushbufs', target]).catch(() => undefined);
  const back = createHash('sha256');
  const rd = await fs.open(target, 'r');
  let got = 0;
  try {
    while (got < bytes) {
      const { bytesRead } = await rd.read(chunk, 0, Math.min(chunk.length, bytes - got), got);
      if (bytesRead === 0) break;
      back.update(chunk.subarray(0, bytesRead));
      got += bytesRead;
    }
  } finally {
    await rd.close();
  }
  if (got !== bytes || back.digest('hex') !== sha256) {
    throw new BerthError('resource', `verifying ${target} failed: ${got === bytes ? 'the data read back differs from the image' : `only ${got} of ${bytes} bytes read back`}`, { hint: 'the card may be failing or fake-capacity; try another one' });
  }
  return { bytes, sha256 };
}
