/**
 * A minimal writer for the "newc" cpio format the kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Enough for regular files, directories
 * and symlinks; every entry is owned by root and timestamped 0 so the archive is reproducible.
 */

export interface CpioEntry {
  /** Path inside the archive, without a leading slash. */
  readonly path: string;
  readonly type: 'file' | 'dir' | 'symlink';
  readonly mode: number;
  /** File contents, or the symlink target. */
  readonly data?: Buffer | string;
}

const TYPE_BITS = { file: 0o100000, dir: 0o040000, symlink: 0o120000 } as const;

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

function header(ino: number, mode: number, nlink: number, size: number, name: string): Buffer {
  const fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, Buffer.byteLength(name) + 1, 0];
  return Buffer.from(`070701${fields.map(hex8).join('')}${name}\0`);
}

export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const push = (b: Buffer): void => {
    parts.push(b);
    offset += b.length;
  };
  entries.forEach((e, i) => {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
    const h = header(i + 1, TYPE_BITS[e.type] | (e.mode & 0o7777), e.type === 'dir' ? 2 : 1, data.length, e.path);
    push(h);
    push(pad4(offset));
    push(data);
    push(pad4(offset));
  });
  const trailer = header(0, 0, 1, 0, 'TRAILER!!!');
  push(trailer);
  push(pad4(offset));
  return Buffer.concat(parts);
}
