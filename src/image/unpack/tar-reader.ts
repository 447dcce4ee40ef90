import { rawPaxRecords } from './pax.js';

/**
 * A synchronous, push-style tar reader: the layer's bytes go in with `push(chunk)`, and every header and
 * every byte of file data comes out through the sink before `push` returns.
 *
 * Why not tar-stream's extractor: it queues input chunks, slices them into per-entry Readables and hands
 * them over through promises, so each 128 KiB gunzip output (a Buffer whose bytes live outside V8's heap)
 * stayed referenced across several scavenges, got promoted, and only a full GC freed it: that was most of
 * a pull's peak RSS above the process's own (BENCHMARKS.md, issue 22). Here a chunk is dead as soon as
 * `push` returns, and an entry costs a header object and no stream.
 *
 * Formats: ustar and GNU headers, GNU long names ('L', 'K'), PAX extended and global headers (path,
 * linkpath, size; the rest kept in `pax`, with `SCHILY.xattr.*` values also as raw bytes in `xattrs`).
 * Like tar-stream: a zero block is skipped (not the end: concatenated archives go on), a header of
 * another format, a bad checksum or input that ends inside an entry is an Error (the caller maps it to
 * a corrupt-layer error).
 */

export type TarEntryType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'contiguous-file';

export interface TarHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow the header (PAX `size` wins over the header's). */
  size: number;
  mtime: Date;
  /** null: a type berth does not know (the caller refuses it). */
  type: TarEntryType | null;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  /** PAX records that applied to this entry (global ones included), values decoded as UTF-8. */
  pax: Record<string, string> | null;
  /** `SCHILY.xattr.<name>` records as raw bytes (a binary security.capability survives). */
  xattrs: Array<[string, Buffer]> | null;
}

/** Where an entry's data goes. `write`'s chunk is only valid during the call: copy or write it out at once. */
export interface EntryBody {
  write(chunk: Buffer): void;
  /** After the entry's last byte (at once for an empty entry). */
  end(): void;
}

/** Called per entry, in archive order; returns where its data goes, or undefined to skip the data. */
export type OnEntry = (header: TarHeader) => EntryBody | undefined;

/** Larger PAX or long-name headers are refused: they are read whole into memory (tar-stream's limit). */
const MAX_LONG_HEADER = 4 * 1024 * 1024;
const BLOCK = 512;

const TYPES: Record<number, TarEntryType> = { 0: 'file', 1: 'link', 2: 'symlink', 3: 'character-device', 4: 'block-device', 5: 'directory', 6: 'fifo', 7: 'contiguous-file' };
const PAX = 72; // 'x'
const PAX_GLOBAL = 55; // 'g'
const GNU_LONG_NAME = 28; // 'L'
const GNU_LONG_LINK = 27; // 'K'

export class TarReader {
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  /** Data bytes of the current entry (or long header) still to come, then padding to skip. */
  private missing = 0;
  private padding = 0;
  private body: EntryBody | undefined;
  /** A PAX or GNU long header being collected: its typeflag and bytes. */
  private long: { flag: number; buf: Buffer; fill: number } | undefined;
  /** The next entry's PAX records (global ones merged in), and the global ones, values as raw bytes. */
  private pax: Map<string, Buffer> | null = null;
  private paxGlobal: Map<string, Buffer> | null = null;
  private longName: string | null = null;
  private longLink: string | null = null;

  constructor(private readonly onEntry: OnEntry) {}

  /** Parses `chunk`; the sink has seen everything in it when this returns. Throws on a malformed archive. */
  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.missing > 0) {
        const n = Math.min(this.missing, chunk.length - pos);
        if (this.long) {
          chunk.copy(this.long.buf, this.long.fill, pos, pos + n);
          this.long.fill += n;
        } else this.body?.write(chunk.subarray(pos, pos + n));
        pos += n;
        this.missing -= n;
        if (this.missing === 0) this.entryDone();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - pos);
        pos += n;
        this.padding -= n;
        continue;
      }
      // A header: straight from the chunk when it is all there, else collected across chunks.
      if (this.blockFill === 0 && chunk.length - pos >= BLOCK) {
        this.header(chunk.subarray(pos, pos + BLOCK));
        pos += BLOCK;
        continue;
      }
      const n = Math.min(BLOCK - this.blockFill, chunk.length - pos);
      chunk.copy(this.block, this.blockFill, pos, pos + n);
      this.blockFill += n;
      pos += n;
      if (this.blockFill === BLOCK) {
        this.blockFill = 0;
        this.header(this.block);
      }
    }
  }

  /** The input is complete: throws when it ended inside a header or an entry. */
  end(): void {
    if (this.missing > 0 || this.blockFill > 0 || this.long) throw new Error('Unexpected end of data');
  }

  private header(block: Buffer): void {
    const h = decodeHeader(block);
    if (h === undefined) return; // a zero block
    const flag = block[156] === 0 ? 0 : block[156]! - 48;
    if (flag === PAX || flag === PAX_GLOBAL || flag === GNU_LONG_NAME || flag === GNU_LONG_LINK) {
      if (!(h.size >= 0)) throw new Error('Invalid header');
      if (h.size > MAX_LONG_HEADER) throw new Error('Header exceeds max size');
      this.padding = (BLOCK - (h.size % BLOCK)) % BLOCK;
      this.long = { flag, buf: Buffer.alloc(h.size), fill: 0 };
      this.missing = h.size;
      if (h.size === 0) this.entryDone();
      return;
    }
    this.applyLong(h);
    if (!(h.size >= 0) || !Number.isSafeInteger(h.size)) throw new Error('Invalid header');
    // Directories, links and devices carry no data berth reads; their size (if any) is skipped.
    const hasData = h.type === 'file' || h.type === 'contiguous-file';
    const size = h.size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    this.body = this.onEntry(h) ?? undefined;
    if (!hasData) {
      this.body?.end();
      this.body = undefined;
    }
    this.missing = size;
    if (size === 0) this.entryDone();
  }

  /**
   * Long names and PAX records apply to the entry that follows them. As in tar-stream, a global PAX header
   * applies only merged into an entry's own PAX header, never alone.
   */
  private applyLong(h: TarHeader): void {
    if (this.longName !== null) h.name = this.longName;
    if (this.longLink !== null) h.linkname = this.longLink;
    this.longName = this.longLink = null;
    const pax = this.pax;
    this.pax = null;
    if (!pax) return;
    const decoded: Record<string, string> = {};
    const xattrs: Array<[string, Buffer]> = [];
    for (const [key, value] of pax) {
      decoded[key] = value.toString('utf8');
      if (key.startsWith(SCHILY)) xattrs.push([key.slice(SCHILY.length), value]);
    }
    if (decoded.path) h.name = decoded.path;
    if (decoded.linkpath) h.linkname = decoded.linkpath;
    if (decoded.size) h.size = parseInt(decoded.size, 10);
    h.pax = decoded;
    h.xattrs = xattrs;
  }

  private entryDone(): void {
    const long = this.long;
    if (long) {
      this.long = undefined;
      this.decodeLong(long.flag, long.buf);
      return;
    }
    const body = this.body;
    this.body = undefined;
    body?.end();
  }

  private decodeLong(flag: number, buf: Buffer): void {
    if (flag === GNU_LONG_NAME) this.longName = cString(buf, 0, buf.length);
    else if (flag === GNU_LONG_LINK) this.longLink = cString(buf, 0, buf.length);
    else if (flag === PAX_GLOBAL) this.paxGlobal = new Map(rawPaxRecords(buf));
    else this.pax = new Map([...(this.paxGlobal ?? []), ...rawPaxRecords(buf)]);
  }
}

const SCHILY = 'SCHILY.xattr.';

/** One 512-byte header block → its fields; undefined for a zero block. Throws on a bad checksum or format. */
export function decodeHeader(b: Buffer): TarHeader | undefined {
  const c = checksum(b);
  if (c === 8 * 32) return undefined; // all zero: the checksum field counts as spaces
  if (c !== octal(b, 148, 8)) throw new Error('Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?');
  let name = cString(b, 0, 100);
  const ustar = b.toString('latin1', 257, 263) === 'ustar\0';
  const gnu = b.toString('latin1', 257, 265) === 'ustar  \0';
  if (!ustar && !gnu) throw new Error('Invalid tar header: unknown format.');
  if (ustar && b[345] !== 0) name = `${cString(b, 345, 155)}/${name}`;
  let flag = b[156] === 0 ? 0 : b[156]! - 48;
  // Old tars mark directories with a trailing slash on a regular file entry.
  if (flag === 0 && name.endsWith('/')) flag = 5;
  return {
    name,
    mode: octal(b, 100, 8),
    uid: octal(b, 108, 8),
    gid: octal(b, 116, 8),
    size: octal(b, 124, 12),
    mtime: new Date(1000 * octal(b, 136, 12)),
    type: TYPES[flag] ?? null,
    linkname: b[157] === 0 ? null : cString(b, 157, 100),
    devmajor: octal(b, 329, 8),
    devminor: octal(b, 337, 8),
    pax: null,
    xattrs: null,
  };
}

function checksum(b: Buffer): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += b[i]!;
  for (let i = 156; i < BLOCK; i++) sum += b[i]!;
  return sum;
}

/** A NUL-terminated UTF-8 field. */
function cString(b: Buffer, off: number, len: number): string {
  const nul = b.indexOf(0, off);
  return b.toString('utf8', off, nul < 0 || nul > off + len ? off + len : nul);
}

/** An octal number field (leading spaces/NULs, ended by a space or NUL), or GNU base-256 when the high bit is set. */
function octal(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) return base256(b, off, len);
  let i = off;
  const end = off + len;
  while (i < end && b[i] === 0x20) i++;
  while (i < end && b[i] === 0) i++;
  let n = 0;
  let digits = 0;
  for (; i < end; i++) {
    const d = b[i]! - 48;
    if (d < 0 || d > 7) break;
    n = n * 8 + d;
    digits++;
  }
  return digits === 0 && i < end && b[i] !== 0x20 && b[i] !== 0 ? NaN : n;
}

function base256(b: Buffer, off: number, len: number): number {
  const positive = b[off] === 0x80;
  if (!positive && b[off] !== 0xff) return NaN;
  let sum = 0;
  for (let i = off + 1; i < off + len; i++) sum = sum * 256 + (positive ? b[i]! : 0xff - b[i]!);
  return positive ? sum : -sum;
}
