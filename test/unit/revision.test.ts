import { describe, expect, it } from 'vitest';
import { decodeRevision } from '../../src/board/revision.js';
import { BerthError } from '../../src/errors.js';

const MiB = 1024 * 1024;

describe('decodeRevision', () => {
  it.each([
    ['9000c1', 'Zero W', 'BCM2835', 512 * MiB, 'Sony UK'],
    ['902120', 'Zero 2 W', 'BCM2837', 512 * MiB, 'Sony UK'],
    ['a02082', '3B', 'BCM2837', 1024 * MiB, 'Sony UK'],
    ['a020d3', '3B+', 'BCM2837', 1024 * MiB, 'Sony UK'],
    ['c03114', '4B', 'BCM2711', 4096 * MiB, 'Sony UK'],
    ['d03114', '4B', 'BCM2711', 8192 * MiB, 'Sony UK'],
    ['b03140', 'CM4', 'BCM2711', 2048 * MiB, 'Sony UK'],
    ['d04170', '5', 'BCM2712', 8192 * MiB, 'Sony UK'],
    ['e04171', '5', 'BCM2712', 16384 * MiB, 'Sony UK'],
    ['a22082', '3B', 'BCM2837', 1024 * MiB, 'Embest'],
  ])('new-style %s is a %s with %s and its memory', (code, type, processor, memoryBytes, manufacturer) => {
    expect(decodeRevision(code)).toMatchObject({ newStyle: true, typeName: type, processor, memoryBytes, manufacturer });
  });

  it('decodes the board revision nibble', () => {
    expect(decodeRevision('c03114')?.boardRevision).toBe('1.4');
  });

  it('decodes old-style Pi 1 codes, including the over-voltage prefix', () => {
    expect(decodeRevision('000e')).toMatchObject({ newStyle: false, typeName: 'B', processor: 'BCM2835', memoryBytes: 512 * MiB });
    expect(decodeRevision('1000010')).toMatchObject({ typeName: 'B+', memoryBytes: 512 * MiB });
  });

  it('returns undefined for well-formed codes naming no known board', () => {
    expect(decodeRevision('0000')).toBeUndefined();
    expect(decodeRevision('8fff0')).toBeUndefined(); // new-style bit set, type 0xff unknown
  });

  it.each(['zz12', '', 'c03114 extra', '123456789', '0x'])('rejects malformed code %j with a host error', (code) => {
    expect(() => decodeRevision(code)).toThrow(BerthError);
    try {
      decodeRevision(code);
    } catch (e) {
      expect((e as BerthError).category).toBe('host');
      expect((e as BerthError).message).toMatch(/malformed Revision/);
    }
  });
});
