import { describe, expect, it } from 'vitest';
import { TarReader, type TarHeader } from '../../src/image/unpack/tar-reader.js';
import { rawPaxHeader, tarOf } from '../helpers/images/oci.js';

// The pull's synchronous tar reader (src/image/unpack/tar-reader.ts): what it reports must not depend on
// how the bytes are cut into chunks, and a malformed archive must throw, never pass silently.

interface Seen {
  header: TarHeader;
  data: Buffer;
  ended: boolean;
}

function read(tar: Buffer, chunkSize: number): Seen[] {
  const seen: Seen[] = [];
  const reader = new TarReader((header) => {
    const s: Seen = { header, data: Buffer.alloc(0), ended: false };
    const parts: Buffer[] = [];
    seen.push(s);
    return {
      // Chunks are only valid during the call: keep a copy.
      write: (chunk) => void parts.push(Buffer.from(chunk)),
      end: () => {
        s.data = Buffer.concat(parts);
        s.ended = true;
      },
    };
  });
  for (let i = 0; i < tar.length; i += chunkSize) reader.push(tar.subarray(i, i + chunkSize));
  reader.end();
  return seen;
}

/** A GNU header block ('ustar  \0') of typeflag `flag` and `size`, with a valid checksum. */
function gnuBlock(name: string, flag: string, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 'latin1');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.write('        ', 148, 'latin1');
  b.write(flag, 156, 'latin1');
  b.write('ustar  \0', 257, 'latin1');
  b.write(`${b.reduce((a, c) => a + c, 0).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);

describe('TarReader', () => {
  it('reports the same entries and bytes whatever the chunk size', async () => {
    const big = Buffer.alloc(20_000, 7);
    big.write('end', big.length - 3);
    const tar = await tarOf([
      { name: 'dir', type: 'directory', mode: 0o750, uid: 5, gid: 6, mtime: 1234 },
      { name: 'dir/a', content: 'hello', mode: 0o4755 },
      { name: 'dir/empty', content: '' },
      { name: 'dir/big', content: big },
      { name: 'dir/link', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'dir/hard', type: 'link', linkname: 'dir/a' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: `deep/${'n'.repeat(150)}/file`, content: 'long' },
    ]);
    const whole = read(tar, tar.length);
    for (const size of [1, 511, 512, 513, 4096, 65_536]) expect(read(tar, size)).toEqual(whole);
    const by = (name: string): Seen => whole.find((s) => s.header.name === name)!;
    expect(whole.map((s) => s.header.type)).toEqual(['directory', 'file', 'file', 'file', 'symlink', 'link', 'character-device', 'file']);
    expect(by('dir').header).toMatchObject({ mode: 0o750, uid: 5, gid: 6, mtime: new Date(1_234_000) });
    expect(by('dir/a')).toMatchObject({ data: Buffer.from('hello'), ended: true, header: { mode: 0o4755, size: 5 } });
    expect(by('dir/empty')).toMatchObject({ data: Buffer.alloc(0), ended: true });
    expect(by('dir/big').data.equals(big)).toBe(true);
    expect(by('dir/link').header.linkname).toBe('/etc/passwd');
    expect(by('dev/null').header).toMatchObject({ devmajor: 1, devminor: 3 });
    // tar-stream writes a name over 100 bytes as a PAX path record.
    expect(by(`deep/${'n'.repeat(150)}/file`).data.toString()).toBe('long');
  });

  it('keeps PAX xattr values as raw bytes, and applies a PAX header to the next entry only', async () => {
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xfe, 0x00, 0x80]);
    const file = await tarOf([{ name: 'bin/ping', content: 'x' }, { name: 'bin/other', content: 'y' }]);
    const tar = Buffer.concat([rawPaxHeader('PaxHeaders/ping', { 'SCHILY.xattr.security.capability': cap, 'SCHILY.xattr.user.note': Buffer.from('é') }), file]);
    const seen = read(tar, 100);
    expect(seen.map((s) => s.header.name)).toEqual(['bin/ping', 'bin/other']);
    expect(seen[0]!.header.xattrs).toEqual([
      ['security.capability', cap],
      ['user.note', Buffer.from('é')],
    ]);
    expect(seen[1]!.header.xattrs).toBeNull();
  });

  it('reads GNU long names and long link targets', () => {
    const name = `${'d'.repeat(120)}/file`;
    const link = `${'t'.repeat(130)}`;
    const body = Buffer.from('data');
    const tar = Buffer.concat([
      gnuBlock('././@LongLink', 'L', name.length + 1), Buffer.from(`${name}\0`), pad(name.length + 1),
      gnuBlock('short', '0', body.length), body, pad(body.length),
      gnuBlock('././@LongLink', 'K', link.length), Buffer.from(link), pad(link.length),
      gnuBlock('sym', '2', 0),
      Buffer.alloc(1024),
    ]);
    const seen = read(tar, 7);
    expect(seen.map((s) => [s.header.name, s.header.type, s.header.linkname])).toEqual([
      [name, 'file', null],
      ['sym', 'symlink', link],
    ]);
    expect(seen[0]!.data).toEqual(body);
  });

  it('throws on a bad checksum, an unknown format, an oversized long header and a truncated archive', async () => {
    const tar = await tarOf([{ name: 'a', content: 'hello world' }]);
    const corrupt = Buffer.from(tar);
    corrupt[0] = 'b'.charCodeAt(0);
    expect(() => read(corrupt, 512)).toThrow(/Invalid tar header/);
    const v7 = Buffer.from(gnuBlock('a', '0', 0));
    v7.write('\0\0\0\0\0\0\0\0', 257, 'latin1');
    v7.write('        ', 148, 'latin1');
    v7.write(`${v7.reduce((a, c) => a + c, 0).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect(() => read(v7, 512)).toThrow(/unknown format/);
    expect(() => read(gnuBlock('x', 'x', 5 * 1024 * 1024), 512)).toThrow(/max size/);
    for (const cut of [100, 512 + 5]) expect(() => read(tar.subarray(0, cut), 64)).toThrow(/Unexpected end/);
  });

  it('skips an unknown type and a directory body instead of reading them as headers', () => {
    const junk = Buffer.alloc(600, 0x41);
    const tar = Buffer.concat([gnuBlock('odd', 'Z', junk.length), junk, pad(junk.length), gnuBlock('dir/', '5', junk.length), junk, pad(junk.length), gnuBlock('f', '0', 0)]);
    expect(read(tar, 512).map((s) => [s.header.name, s.header.type])).toEqual([
      ['odd', null],
      ['dir/', 'directory'],
      ['f', 'file'],
    ]);
  });
});
