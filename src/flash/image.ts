import fs from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { BerthError, isErrno } from '../errors.js';
import { bundleArchOf, describeElf, parseElfHeader, type BundleArch, type ElfInfo } from './elf.js';
import { Ext4Volume } from './ext4.js';
import { FatVolume } from './fat.js';
import { isFatType, LINUX_TYPE, readPartitionTable, type Partition } from './mbr.js';

/**
 * A Raspberry Pi OS–shaped image: an MBR whose first FAT partition holds the firmware's config.txt and
 * cmdline.txt (what makes it a Raspberry Pi boot partition: the firmware reads both, and no other
 * board's images have that pair), and a Linux partition with an ext4 root file system whose /usr/bin
 * holds ELF binaries for one architecture. Partitions are found from the table, never assumed.
 */
export interface PiImage {
  readonly file: string;
  readonly bootPartition: Partition;
  readonly rootPartition: Partition;
  readonly boot: FatVolume;
  readonly root: Ext4Volume;
  readonly arch: BundleArch;
  readonly elf: ElfInfo;
}

const EXT_MAGIC_OFFSET = 1024 + 56;

/** Opens an image file and checks it is a Raspberry Pi image berth can provision; throws BerthError(invalid) saying why not. */
export async function openPiImage(file: string): Promise<PiImage> {
  const parts = await readPartitionTable(file);
  const bootPartition = parts.find((p) => isFatType(p.type));
  if (!bootPartition) throw new BerthError('invalid', `${file} has no FAT boot partition (partitions: ${describe(parts)}); not a Raspberry Pi OS image`);
  const rootPartition = parts.find((p) => p.type === LINUX_TYPE && p.number > bootPartition.number);
  if (!rootPartition) throw new BerthError('invalid', `${file} has no Linux root partition after the boot partition (partitions: ${describe(parts)}); not a Raspberry Pi OS image`);
  const boot = new FatVolume(file, bootPartition.offset);
  let names: string[];
  try {
    names = (await boot.rootNames()).map((n) => n.toLowerCase());
  } catch (err) {
    throw new BerthError('invalid', `${file}: partition ${bootPartition.number} is not a readable FAT file system (${(err as Error).message})`, { cause: err });
  }
  const missing = ['config.txt', 'cmdline.txt'].filter((n) => !names.includes(n));
  if (missing.length > 0) throw new BerthError('invalid', `${file}: the boot partition has no ${missing.join(' or ')}; not a Raspberry Pi image`);
  await checkExtMagic(file, rootPartition);
  const root = new Ext4Volume(file, rootPartition.offset);
  const elf = await userlandElf(root, file);
  const arch = bundleArchOf(elf);
  if (!arch) throw new BerthError('invalid', `${file}: the root file system's userland is ${describeElf(elf)}; berth has agent bundles for arm64 and 32-bit hard-float arm`);
  return { file, bootPartition, rootPartition, boot, root, arch, elf };
}

function describe(parts: readonly Partition[]): string {
  return parts.length === 0 ? 'none' : parts.map((p) => `${p.number}: type 0x${p.type.toString(16)}`).join(', ');
}

async function checkExtMagic(file: string, p: Partition): Promise<void> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(2);
    await fh.read(buf, 0, 2, p.offset + EXT_MAGIC_OFFSET);
    if (buf.readUInt16LE(0) !== 0xef53) throw new BerthError('invalid', `${file}: partition ${p.number} holds no ext2/3/4 file system; not a Raspberry Pi OS root partition`);
  } finally {
    await fh.close();
  }
}

/** The ELF header most small binaries in /usr/bin agree on (a few files suffice; the smallest are cheapest to read). */
async function userlandElf(root: Ext4Volume, file: string): Promise<ElfInfo> {
  const candidates = ((await root.list('/usr/bin')) ?? []).filter((e) => e.kind === 'file' && e.size >= 64).sort((a, b) => a.size - b.size);
  const seen = new Map<string, { elf: ElfInfo; count: number }>();
  let found = 0;
  for (const c of candidates.slice(0, 16)) {
    const elf = parseElfHeader((await root.readFile(`/usr/bin/${c.name}`)) ?? Buffer.alloc(0));
    if (!elf) continue;
    const key = `${elf.bits}/${elf.machine}/${elf.hardFloat}`;
    seen.set(key, { elf, count: (seen.get(key)?.count ?? 0) + 1 });
    if (++found === 3) break;
  }
  const best = [...seen.values()].sort((a, b) => b.count - a.count)[0];
  if (!best) throw new BerthError('invalid', `${file}: no ELF binaries in /usr/bin of the root file system; cannot tell its architecture`);
  return best.elf;
}

/**
 * Writes the raw image of `input` (an .img, or an .img.xz decompressed on the way with xz) to `dest`,
 * which must not exist (created exclusively, mode 0600), and fsyncs it. `cp --sparse=always` or `xz -dc` writes
 * the file: zero runs become holes (a Raspberry Pi OS image is largely free space) and the data never
 * passes through Node. Never writes to `input`.
 */
export async function copyImage(input: string, dest: string): Promise<void> {
  try {
    await fs.access(input, fs.constants.R_OK);
  } catch (err) {
    throw new BerthError(isErrno(err, 'ENOENT') ? 'notFound' : 'host', `cannot read the image ${input}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  // 0600: the image is about to hold the device's broker password and keys (cp keeps the mode).
  const fh = await fs.open(dest, 'wx', 0o600);
  try {
    // Both tools write through the descriptor opened above, never by the name: when a signal makes the
    // caller remove `dest` while the tool is still starting, a tool opening `dest` itself would create it
    // again after the removal and leave a full-size orphan (seen in CI: flash.test "interrupted flash").
    // cp reopens its stdout through /dev/stdout, i.e. this same inode even once unlinked.
    if (!input.endsWith('.xz')) {
      const cp = spawn('cp', ['--sparse=always', '--', input, '/dev/stdout'], { stdio: ['ignore', fh.fd, 'pipe'] });
      const x = await exitOf(cp, 'cp', 'coreutils');
      if (x.code !== 0) throw new BerthError('host', `cannot copy ${input} to ${dest}: ${x.stderr.trim() || `cp exited ${x.code}`}`);
    } else {
      // xz makes zero runs holes itself when stdout is a regular file.
      const xz = spawn('xz', ['-dc', '--', input], { stdio: ['ignore', fh.fd, 'pipe'] });
      const x = await exitOf(xz, 'xz', 'xz-utils');
      if (x.code !== 0) throw new BerthError('invalid', `cannot decompress ${input}: ${x.stderr.trim() || `xz exited ${x.code}`}`);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function exitOf(child: ChildProcess, name: string, pkg: string): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new BerthError('host', `${name} not found`, { hint: `apt-get install ${pkg}` }) : e));
    child.once('close', (code) => resolve({ code, stderr }));
  });
}
