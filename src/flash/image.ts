import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
 * which must not exist (created exclusively). Runs of zeros become holes, as in the images xz and cp
 * write: a Raspberry Pi OS image is largely free space. Never writes to `input`.
 */
export async function copyImage(input: string, dest: string): Promise<void> {
  try {
    await fs.access(input, fs.constants.R_OK);
  } catch (err) {
    throw new BerthError(isErrno(err, 'ENOENT') ? 'notFound' : 'host', `cannot read the image ${input}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (!input.endsWith('.xz')) {
    await pipeline(createReadStream(input, { highWaterMark: 1 << 20 }), sparseWriter(dest));
    return;
  }
  const xz = spawn('xz', ['-dc', '--', input], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  xz.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    xz.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new BerthError('host', 'xz not found', { hint: 'apt-get install xz-utils' }) : e));
    xz.once('close', resolve);
  });
  await Promise.all([pipeline(xz.stdout, sparseWriter(dest)), exited]);
  const code = await exited;
  if (code !== 0) throw new BerthError('invalid', `cannot decompress ${input}: ${stderr.trim() || `xz exited ${code}`}`);
}

const HOLE = 64 * 1024;
const ZEROS = Buffer.alloc(HOLE);

/** A writable stream into a new file (exclusive create) that skips 64 KiB pieces of zeros and sets the length at the end. */
function sparseWriter(dest: string): Writable {
  let fh: fs.FileHandle | undefined;
  let offset = 0;
  const put = async (chunk: Buffer): Promise<void> => {
    let runStart = -1;
    for (let at = 0; at <= chunk.length; at += HOLE) {
      const piece = chunk.subarray(at, at + HOLE);
      const zero = piece.length === 0 || piece.equals(piece.length === HOLE ? ZEROS : ZEROS.subarray(0, piece.length));
      if (!zero && runStart < 0) runStart = at;
      if (zero && runStart >= 0) {
        await fh!.write(chunk, runStart, at - runStart, offset + runStart);
        runStart = -1;
      }
    }
    if (runStart >= 0) await fh!.write(chunk, runStart, chunk.length - runStart, offset + runStart);
    offset += chunk.length;
  };
  return new Writable({
    highWaterMark: 1 << 20,
    construct(done) {
      fs.open(dest, 'wx').then((h) => ((fh = h), done()), done);
    },
    write(chunk: Buffer, _enc, done) {
      put(chunk).then(() => done(), done);
    },
    // Pipes deliver 16–64 KiB at a time: what queues up during one write goes out in the next.
    writev(chunks, done) {
      put(Buffer.concat(chunks.map((c) => c.chunk as Buffer))).then(() => done(), done);
    },
    final(done) {
      fh!.truncate(offset).then(() => fh!.sync()).then(() => done(), done);
    },
    destroy(err, done) {
      (fh ? fh.close() : Promise.resolve()).then(() => done(err), () => done(err));
    },
  });
}
