import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../../errors.js';
import type { HostPaths } from '../../host/paths.js';
import { readHostText } from '../../host/read.js';

/**
 * The host facts the spec builder needs, read through `HostPaths` so tests can point them at a fixture
 * tree. Everything is injectable: `buildSpec` only calls these methods.
 */
export interface HostFacts {
  /** Hard limit per OCI rlimit type (`RLIMIT_NOFILE` …) from /proc/self/limits; `Infinity` = unlimited; absent = unknown. */
  readonly rlimitHard: Readonly<Record<string, number>>;
  /** The kernel has cgroup namespaces (/proc/self/ns/cgroup exists). */
  readonly cgroupNamespace: boolean;
  /** The bounding set berth runs with (CapBnd from /proc/self/status); undefined = unknown. */
  readonly capBounding?: bigint;
  /** AppArmor is enabled in the kernel (/sys/module/apparmor/parameters/enabled is Y); absent = no. */
  readonly appArmor?: boolean;
  /** The kernel has mount_setattr (5.12+), which recursively read-only binds (`rro`) need; absent = no. */
  readonly recursiveReadOnly?: boolean;
  /**
   * A device node or directory at a host path; undefined when nothing is there. Symlinks are followed
   * unless `follow` is false, when a symlink is `other` (walking all of /dev must not follow /dev/fd).
   */
  statDevice(hostPath: string, follow?: boolean): DeviceStat | undefined;
}

export type DeviceStat =
  | { readonly kind: 'c' | 'b'; readonly major: number; readonly minor: number; readonly mode: number; readonly uid: number; readonly gid: number }
  | { readonly kind: 'dir'; readonly entries: readonly string[] }
  | { readonly kind: 'other' };

const LIMIT_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

/** Parses /proc/self/limits: `Max open files  1024  1048576  files` → { RLIMIT_NOFILE: 1048576 }. */
export function parseProcLimits(text: string): Record<string, number> {
  const hard: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    const type = m ? LIMIT_NAMES[m[1]!] : undefined;
    if (!m || type === undefined) continue;
    const value = m[3] === 'unlimited' ? Infinity : Number(m[3]);
    if (!Number.isNaN(value)) hard[type] = value;
  }
  return hard;
}

/** Linux `dev_t` → major/minor (glibc's gnu_dev_major/minor). */
export function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/** Stats a (host) path as a device: char/block node with its numbers, a directory with its entries, or other. */
export function statDevicePath(file: string, follow = true): DeviceStat | undefined {
  let st: fs.BigIntStats;
  try {
    st = follow ? fs.statSync(file, { bigint: true }) : fs.lstatSync(file, { bigint: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw new BerthError('host', `cannot stat ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (st.isCharacterDevice() || st.isBlockDevice()) {
    return { kind: st.isCharacterDevice() ? 'c' : 'b', ...splitDev(st.rdev), mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) };
  }
  if (st.isDirectory()) return { kind: 'dir', entries: fs.readdirSync(file).sort() };
  return { kind: 'other' };
}

/** AppArmor is on: the module's `enabled` parameter reads Y (absent when the kernel has no AppArmor). */
export function hostHasAppArmor(host: HostPaths): boolean {
  return readHostText(host, '/sys/module/apparmor/parameters/enabled')?.trim() === 'Y';
}

/** "6.1.0-18-arm64" → [6, 1]; undefined when it does not start with MAJOR.MINOR. */
export function parseKernelRelease(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** `release` (`uname -r`) is at least `min` ("MAJOR.MINOR"); false when either does not parse. */
export function kernelAtLeast(release: string | undefined, min: string): boolean {
  const have = parseKernelRelease(release ?? '');
  const want = parseKernelRelease(min);
  return have !== undefined && want !== undefined && (have[0] > want[0] || (have[0] === want[0] && have[1] >= want[1]));
}

/** mount_setattr(2) came in Linux 5.12; `release` is /proc/sys/kernel/osrelease (`uname -r`). */
export function kernelHasMountSetattr(release: string | undefined): boolean {
  return kernelAtLeast(release, '5.12');
}

/** The real host's facts (or a fixture tree's, through `host`). Device paths are resolved through `host` too. */
export function readHostFacts(host: HostPaths): HostFacts {
  const limits = readHostText(host, '/proc/self/limits');
  const status = readHostText(host, '/proc/self/status');
  const capBnd = status && /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return {
    rlimitHard: limits === undefined ? {} : parseProcLimits(limits),
    cgroupNamespace: fs.existsSync(host.resolve('/proc/self/ns/cgroup')),
    ...(capBnd ? { capBounding: BigInt(`0x${capBnd}`) } : {}),
    appArmor: hostHasAppArmor(host),
    recursiveReadOnly: kernelHasMountSetattr(readHostText(host, '/proc/sys/kernel/osrelease')),
    statDevice: (hostPath, follow) => statDevicePath(host.resolve(path.posix.normalize(hostPath)), follow),
  };
}
