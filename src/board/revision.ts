import { BerthError } from '../errors.js';

/** A decoded Raspberry Pi revision code (the `Revision` line of /proc/cpuinfo). */
export interface RevisionInfo {
  readonly code: string;
  readonly newStyle: boolean;
  /** Board type number (new-style bits 4–11); undefined for old-style codes. */
  readonly type?: number;
  readonly typeName: string;
  readonly processor: string;
  readonly memoryBytes: number;
  readonly manufacturer?: string;
  readonly boardRevision?: string;
}

const MiB = 1024 * 1024;

// New-style type field, bits 4–11 (Raspberry Pi documentation, "Raspberry Pi revision codes").
const TYPES: Record<number, string> = {
  0x00: 'A', 0x01: 'B', 0x02: 'A+', 0x03: 'B+', 0x04: '2B', 0x05: 'Alpha', 0x06: 'CM1', 0x08: '3B',
  0x09: 'Zero', 0x0a: 'CM3', 0x0c: 'Zero W', 0x0d: '3B+', 0x0e: '3A+', 0x10: 'CM3+', 0x11: '4B',
  0x12: 'Zero 2 W', 0x13: '400', 0x14: 'CM4', 0x15: 'CM4S', 0x17: '5', 0x18: 'CM5', 0x19: '500', 0x1a: 'CM5 Lite',
};
const PROCESSORS = ['BCM2835', 'BCM2836', 'BCM2837', 'BCM2711', 'BCM2712'];
const MANUFACTURERS = ['Sony UK', 'Egoman', 'Embest', 'Sony Japan', 'Embest', 'Stadium'];
const MEMORY_MIB = [256, 512, 1024, 2048, 4096, 8192, 16384];

// Old-style codes (Pi 1 era, all BCM2835): type and memory.
const OLD_CODES: Record<number, [string, number]> = {
  0x02: ['B', 256], 0x03: ['B', 256], 0x04: ['B', 256], 0x05: ['B', 256], 0x06: ['B', 256],
  0x07: ['A', 256], 0x08: ['A', 256], 0x09: ['A', 256], 0x0d: ['B', 512], 0x0e: ['B', 512],
  0x0f: ['B', 512], 0x10: ['B+', 512], 0x11: ['CM1', 512], 0x12: ['A+', 256], 0x13: ['B+', 512],
  0x14: ['CM1', 512], 0x15: ['A+', 512],
};

/**
 * Decodes a revision code. Returns undefined for a well-formed code that names no known board;
 * throws a `host` error for text that is not a revision code at all.
 */
export function decodeRevision(text: string): RevisionInfo | undefined {
  const code = text.trim().toLowerCase();
  if (!/^(0x)?[0-9a-f]{1,8}$/.test(code)) {
    throw new BerthError('host', `malformed Revision "${text.trim()}" in /proc/cpuinfo: expected up to 8 hex digits`);
  }
  const value = parseInt(code.replace(/^0x/, ''), 16);
  if ((value & 0x800000) !== 0) {
    const type = (value >> 4) & 0xff;
    const memIndex = (value >> 20) & 0x7;
    const proc = PROCESSORS[(value >> 12) & 0xf];
    const typeName = TYPES[type];
    const memMiB = MEMORY_MIB[memIndex];
    if (typeName === undefined || proc === undefined || memMiB === undefined) return undefined;
    return {
      code, newStyle: true, type, typeName, processor: proc, memoryBytes: memMiB * MiB,
      manufacturer: MANUFACTURERS[(value >> 16) & 0xf] ?? 'unknown',
      boardRevision: `1.${value & 0xf}`,
    };
  }
  // Old style: bit 24 marks an over-volted board (warranty void); the board is in the low bits.
  const old = OLD_CODES[value & 0xffffff];
  if (old === undefined) return undefined;
  return { code, newStyle: false, typeName: old[0], processor: 'BCM2835', memoryBytes: old[1] * MiB };
}
