import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decompress, sniffCompression } from '../../src/image/unpack/decompress.js';

// A layer's decompression (src/image/unpack/decompress.ts): gzip is inflated through zlib's handle into
// one reused output buffer. What comes out must equal what zlib's own functions produce, however the
// input is cut, and every malformed stream must throw.

async function* chunks(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  // Fresh copies, as a socket hands them over.
  for (let i = 0; i < buf.length; i += size) yield Buffer.from(buf.subarray(i, i + size));
}

/** Copies each yielded view at once: the contract says it is only valid until the next is asked for. */
async function collect(source: AsyncIterable<Buffer>): Promise<{ data: Buffer; views: Set<ArrayBufferLike> }> {
  const parts: Buffer[] = [];
  const views = new Set<ArrayBufferLike>();
  for await (const b of decompress(source)) {
    views.add(b.buffer);
    parts.push(Buffer.from(b));
  }
  return { data: Buffer.concat(parts), views };
}

// Half incompressible, half repetitive: stored and compressed deflate blocks, and several output buffers.
const plain = Buffer.concat([crypto.randomBytes(300 * 1024), Buffer.alloc(700 * 1024, 'berth ')]);

describe('decompress', () => {
  it('sniffs gzip and zstd by magic number, anything else is a plain tar', () => {
    expect(sniffCompression(zlib.gzipSync(Buffer.from('x')))).toBe('gzip');
    expect(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('zstd');
    expect(sniffCompression(Buffer.from('ustar'))).toBe('none');
  });

  for (const size of [7, 4096, 65536, 1 << 20]) {
    it(`inflates gzip cut into ${size}-byte chunks into one reused buffer`, async () => {
      const { data, views } = await collect(chunks(zlib.gzipSync(plain), size));
      expect(data.equals(plain)).toBe(true);
      expect(views.size).toBe(1);
    });
  }

  it('inflates gzip fed one byte at a time', async () => {
    const small = plain.subarray(290 * 1024, 330 * 1024);
    expect((await collect(chunks(zlib.gzipSync(small), 1))).data.equals(small)).toBe(true);
  });

  it('reads concatenated gzip members and ignores trailing zero padding, as zlib.gunzipSync does', async () => {
    const gz = Buffer.concat([zlib.gzipSync(plain.subarray(0, 1000)), zlib.gzipSync(plain.subarray(1000)), Buffer.alloc(512)]);
    const { data } = await collect(chunks(gz, 10_000));
    expect(data.equals(zlib.gunzipSync(gz))).toBe(true);
    expect(data.equals(plain)).toBe(true);
  });

  it('throws on a stream cut short', async () => {
    const gz = zlib.gzipSync(plain);
    await expect(collect(chunks(gz.subarray(0, gz.length - 100), 8192))).rejects.toThrow(/unexpected end of file/);
  });

  it('throws on corrupt deflate data, with zlib code', async () => {
    const gz = Buffer.from(zlib.gzipSync(plain));
    for (let i = 100; i < 200; i++) gz[i] = 0xff;
    const err = await collect(chunks(gz, 8192)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toMatch(/^Z_/);
  });

  it('throws on a bad gzip trailer (CRC mismatch)', async () => {
    const gz = Buffer.from(zlib.gzipSync(plain));
    gz[gz.length - 6] = (gz[gz.length - 6]! ^ 0xff) & 0xff;
    await expect(collect(chunks(gz, 8192))).rejects.toThrow();
  });

  it('passes a plain tar through untouched, and an empty source yields nothing', async () => {
    expect((await collect(chunks(plain, 65536))).data.equals(plain)).toBe(true);
    expect((await collect(chunks(Buffer.alloc(0), 1))).data.length).toBe(0);
  });
});
