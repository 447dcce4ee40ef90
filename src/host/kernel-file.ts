import fs from 'node:fs';
import { BerthError, isErrno } from '../errors.js';

/** Errors that mean "this file is not there (any more)": a sensor or cgroup that went away is absence, not failure. */
const ABSENT = ['ENOENT', 'ENOTDIR', 'ENODEV', 'ESRCH'];

/**
 * Reads small kernel files (procfs, sysfs, cgroupfs) into one buffer that is kept between reads, so a
 * sample allocates little beyond the strings it returns. One reader per sampler; not shared, since the
 * returned text is only decoded from the buffer, never a view of it.
 *
 * Contract: `text` returns the whole file as latin1 text (kernel files are ASCII), or undefined when it
 * is absent (ENOENT, ENOTDIR, ENODEV, ESRCH); any other error is a BerthError('host').
 */
export class KernelFileReader {
  private buf: Buffer;

  constructor(initialBytes = 8192) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** The file's text; with `head`, only what the first read(2) returned (enough for /proc/stat's first line). */
  text(file: string, head = false): string | undefined {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      if (ABSENT.some((code) => isErrno(err, code))) return undefined;
      throw new BerthError('host', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      let n = 0;
      for (;;) {
        if (n === this.buf.length) {
          const bigger = Buffer.allocUnsafe(this.buf.length * 2);
          this.buf.copy(bigger, 0, 0, n);
          this.buf = bigger;
        }
        // procfs and sysfs generate the text on read; reading sequentially (position null) is what they expect.
        const got = fs.readSync(fd, this.buf, n, this.buf.length - n, null);
        if (got === 0) break;
        n += got;
        if (head) break;
      }
      return this.buf.toString('latin1', 0, n);
    } catch (err) {
      if (ABSENT.some((code) => isErrno(err, code))) return undefined;
      throw new BerthError('host', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A file holding one integer (`memory.current`, a thermal zone's `temp`); undefined when absent or not a number. */
  integer(file: string): number | undefined {
    const t = this.text(file);
    if (t === undefined) return undefined;
    const v = parseInt(t, 10);
    return Number.isNaN(v) ? undefined : v;
  }
}

/**
 * The integer after `key` at the start of a line in `key value` / `Key:   value kB` text, found without
 * a regex; undefined when missing. The key must be whole: "oom" does not match the line "oom_kill 3".
 */
export function fieldAfter(text: string, key: string): number | undefined {
  let from = 0;
  for (;;) {
    const at = text.indexOf(key, from);
    if (at < 0) return undefined;
    from = at + 1;
    if (at > 0 && text.charCodeAt(at - 1) !== 0x0a) continue;
    let i = at + key.length;
    const sep = text.charCodeAt(i);
    if (sep !== 0x20 && sep !== 0x3a && sep !== 0x09) continue;
    while (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x3a || text.charCodeAt(i) === 0x09) i++;
    return leadingInt(text, i);
  }
}

/** The non-negative integer starting at `i` (digits only); undefined when there is none. */
export function leadingInt(text: string, i: number): number | undefined {
  let v = 0;
  const start = i;
  for (let c = text.charCodeAt(i); c >= 0x30 && c <= 0x39; c = text.charCodeAt(++i)) v = v * 10 + (c - 0x30);
  return i === start ? undefined : v;
}
