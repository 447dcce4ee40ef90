import fs from 'node:fs/promises';
import { BerthError } from '../errors.js';

export const SECTOR = 512;

/** One primary partition of an MBR partition table. */
export interface Partition {
  /** 1–4, as Linux numbers primary partitions (p1 … p4). */
  readonly number: number;
  /** MBR partition type byte: 0x0c/0x0b FAT32, 0x83 Linux, 0xee GPT protective … */
  readonly type: number;
  readonly bootable: boolean;
  /** Byte offset of the partition in the image. */
  readonly offset: number;
  readonly size: number;
}

const FAT_TYPES = new Set([0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e]);
export const isFatType = (type: number): boolean => FAT_TYPES.has(type);
export const LINUX_TYPE = 0x83;

/**
 * Parses the four primary entries of an MBR (the first 512 bytes of an image); empty entries are left
 * out. Throws BerthError(invalid) without the 0x55AA signature or for a GPT disk (protective 0xEE entry):
 * Raspberry Pi OS images are MBR, and berth edits nothing it cannot read exactly.
 */
export function parseMbr(sector0: Buffer, source = 'image'): Partition[] {
  if (sector0.length < SECTOR || sector0[510] !== 0x55 || sector0[511] !== 0xaa) {
    throw new BerthError('invalid', `${source} has no MBR partition table (no 0x55AA signature in its first sector)`);
  }
  const parts: Partition[] = [];
  for (let i = 0; i < 4; i++) {
    const e = 446 + 16 * i;
    const type = sector0[e + 4]!;
    const start = sector0.readUInt32LE(e + 8);
    const count = sector0.readUInt32LE(e + 12);
    if (type === 0 || count === 0) continue;
    if (type === 0xee) throw new BerthError('invalid', `${source} has a GPT partition table; berth flash reads MBR images (Raspberry Pi OS)`);
    parts.push({ number: i + 1, type, bootable: sector0[e] === 0x80, offset: start * SECTOR, size: count * SECTOR });
  }
  return parts;
}

/** Reads and parses the partition table of an image file; checks every partition lies inside the file. */
export async function readPartitionTable(file: string): Promise<Partition[]> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(SECTOR);
    const { bytesRead } = await fh.read(buf, 0, SECTOR, 0);
    const parts = parseMbr(bytesRead === SECTOR ? buf : buf.subarray(0, bytesRead), file);
    const { size } = await fh.stat();
    for (const p of parts) {
      if (p.offset + p.size > size) throw new BerthError('invalid', `${file}: partition ${p.number} ends at byte ${p.offset + p.size}, past the end of the image (${size} bytes); is the image truncated?`);
    }
    return parts;
  } finally {
    await fh.close();
  }
}
