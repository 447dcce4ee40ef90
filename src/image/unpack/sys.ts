import { createRequire } from 'node:module';
import os from 'node:os';
import type Koffi from 'koffi';

/**
 * The few syscalls Node lacks: for pulling, mknod (device nodes, FIFOs, overlay whiteouts), lsetxattr
 * (layer xattrs, overlay opaque markers), syncfs, and flock (one writer per partial blob); for starting
 * a container, mount and umount2 (bind sources pinned by src/runtime/bind-pin.ts). Loaded lazily so commands that never pull do not pay for loading libc through koffi.
 */
export interface Syscalls {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  lgetxattr(path: string, name: string): Buffer | undefined;
  /** Flushes the filesystem holding `fd`, once per pull rather than an fsync per file. */
  syncfs(fd: number): void;
  /**
   * flock(fd, LOCK_EX | LOCK_NB): true when this open file description now holds the lock, false when
   * another one does (another process, or another open() in this one). The kernel drops the lock when
   * the last descriptor of the description closes, so a killed process never leaves a lock behind.
   */
  tryLockExclusive(fd: number): boolean;
  /** mount(source, target, NULL, MS_BIND | MS_REC): `source` may be a /proc/self/fd/N magic link. */
  bindMount(source: string, target: string): void;
  /** umount2(target, MNT_DETACH): false when nothing is mounted there (EINVAL) or it is gone (ENOENT). */
  detachMount(target: string): boolean;
}

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

// <sys/file.h>
const LOCK_EX = 2;
const LOCK_NB = 4;
// <sys/mount.h>
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MNT_DETACH = 2;

let cached: Syscalls | undefined;

export function syscalls(): Syscalls {
  if (cached) return cached;
  // Loaded here, not at import: koffi costs ~5 MB and start-up time that most commands never need.
  const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  const libc = koffi.load('libc.so.6');
  const errnoLoc = libc.func('int *__errno_location()');
  const mknod = libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)');
  const lsetxattr = libc.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
  const lgetxattr = libc.func('long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)');
  const syncfs = libc.func('int syncfs(int fd)');
  const flock = libc.func('int flock(int fd, int operation)');
  const mount = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)');
  const umount2 = libc.func('int umount2(const char *target, int flags)');
  const fail = (call: string, path: string): never => {
    const errno = koffi.decode(errnoLoc(), 'int') as number;
    const name = Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
    const err = new Error(`${call} ${path}: ${name}`) as NodeJS.ErrnoException;
    err.code = name;
    err.errno = errno;
    throw err;
  };
  cached = {
    mknod(path, mode, major, minor) {
      // glibc's makedev encoding for the 64-bit dev_t.
      const dev = (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) | (BigInt(minor & ~0xff) << 12n) | (BigInt(major & ~0xfff) << 32n);
      if (mknod(path, mode, dev) !== 0) fail('mknod', path);
    },
    lsetxattr(path, name, value) {
      if (lsetxattr(path, name, value, value.length, 0) !== 0) fail('lsetxattr', path);
    },
    lgetxattr(path, name) {
      const buf = Buffer.alloc(4096);
      const n = Number(lgetxattr(path, name, buf, buf.length));
      if (n < 0) {
        const errno = koffi.decode(errnoLoc(), 'int') as number;
        if (errno === os.constants.errno.ENODATA) return undefined;
        fail('lgetxattr', path);
      }
      return buf.subarray(0, n);
    },
    syncfs(fd) {
      if (syncfs(fd) !== 0) fail('syncfs', `fd ${fd}`);
    },
    tryLockExclusive(fd) {
      if (flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
      if ((koffi.decode(errnoLoc(), 'int') as number) === os.constants.errno.EWOULDBLOCK) return false;
      return fail('flock', `fd ${fd}`);
    },
    bindMount(source, target) {
      if (mount(source, target, null, MS_BIND | MS_REC, null) !== 0) fail('mount', `${source} on ${target}`);
    },
    detachMount(target) {
      if (umount2(target, MNT_DETACH) === 0) return true;
      const errno = koffi.decode(errnoLoc(), 'int') as number;
      if (errno === os.constants.errno.EINVAL || errno === os.constants.errno.ENOENT) return false;
      return fail('umount2', target);
    },
  };
  return cached;
}
