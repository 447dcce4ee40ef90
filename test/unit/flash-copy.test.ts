import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copyImage } from '../../src/flash/image.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('image copy', () => {
  it('copies byte for byte, zero runs as holes, and never over an existing file', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-copy-'));
    dirs.push(d);
    const src = path.join(d, 'in.img');
    const size = 24 * 1024 * 1024 + 4097;
    const fh = fs.openSync(src, 'w');
    fs.ftruncateSync(fh, size);
    // Data at unaligned places: straddling 64 KiB pieces, a single byte, the very last byte.
    fs.writeSync(fh, Buffer.alloc(70_000, 0xab), 0, 70_000, 65_000);
    fs.writeSync(fh, Buffer.from([1]), 0, 1, 5 * 1024 * 1024 + 3);
    fs.writeSync(fh, Buffer.from([2]), 0, 1, size - 1);
    fs.closeSync(fh);
    const dest = path.join(d, 'out.img');
    await copyImage(src, dest);
    expect(fs.readFileSync(dest).equals(fs.readFileSync(src))).toBe(true);
    expect(fs.statSync(dest).blocks * 512).toBeLessThan(1024 * 1024);
    await expect(copyImage(src, dest)).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(copyImage(path.join(d, 'missing.img'), path.join(d, 'x.img'))).rejects.toMatchObject({ category: 'notFound' });
  });
});
