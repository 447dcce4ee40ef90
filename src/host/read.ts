import fs from 'node:fs';
import { BerthError, isErrno } from '../errors.js';
import type { HostPaths } from './paths.js';

/** Reads a host text file; undefined when it does not exist (absence is a fact, not an error, for host probes). */
export function readHostText(host: HostPaths, hostPath: string): string | undefined {
  try {
    return fs.readFileSync(host.resolve(hostPath), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw new BerthError('host', `cannot read ${hostPath}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads a file the user named (a flag or a config key); BerthError(host) naming `what` when it cannot. */
export function readNamedFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new BerthError('host', `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** Device-tree strings are NUL-terminated, and lists (compatible) are NUL-separated. */
export function readDeviceTreeStrings(host: HostPaths, hostPath: string): string[] | undefined {
  const raw = readHostText(host, hostPath);
  if (raw === undefined) return undefined;
  return raw.split('\0').map((s) => s.trim()).filter((s) => s.length > 0);
}

export function readHostBytes(host: HostPaths, hostPath: string, max: number): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(host.resolve(hostPath), 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EACCES')) return undefined;
    throw new BerthError('host', `cannot read ${hostPath}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const buf = Buffer.alloc(max);
    const n = fs.readSync(fd, buf, 0, max, 0);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}
