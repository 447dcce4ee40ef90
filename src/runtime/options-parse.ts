import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { BerthError } from '../errors.js';
import type { DeviceMapping, MountPropagation, RestartPolicy, TmpfsMount, Ulimit, VolumeMount } from './options.js';

/** `-v` options that ask for what berth does anyway (see parseVolume). */
const NO_OP_VOLUME_OPTIONS = new Set(['z', 'Z', 'nocopy', 'cached', 'delegated', 'consistent']);

/** Bind propagations docker takes in `-v` options and compose's `bind.propagation`. */
export const PROPAGATIONS = ['rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave'] as const;

/**
 * The parsers for the docker-compatible flag values `berth run` takes (sizes, numbers, -v, --device,
 * --tmpfs, -e, --label, --restart, signals, --ulimit). Each turns one command-line string into a
 * RunOptions value and fails with `usage` (malformed syntax) or `invalid` (well-formed but unacceptable)
 * BerthErrors naming the input. options.ts re-exports them, so callers import from one place.
 */

/** Docker's volume name rule (two characters at least). */
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function validateVolumeName(name: string): string {
  if (!VOLUME_NAME.test(name) || name.length > 255) {
    throw new BerthError('invalid', `invalid volume name "${name}": use 2–255 characters from [a-zA-Z0-9_.-], starting with a letter or digit (or give an absolute host path to bind-mount)`);
  }
  return name;
}

/**
 * A path inside the container: absolute, no `..` component, not `/`. Returned normalised (no `//`, no
 * trailing `/`). `what` names the flag in the error.
 */
export function validateContainerPath(p: string, what: string): string {
  if (!p.startsWith('/')) throw new BerthError('invalid', `${what}: container path "${p}" must be absolute`);
  if (p.split('/').includes('..')) throw new BerthError('invalid', `${what}: container path "${p}" must not contain ".."`);
  if (p.includes('\0')) throw new BerthError('invalid', `${what}: container path contains a NUL byte`);
  const norm = path.posix.normalize(p).replace(/\/+$/, '');
  if (norm === '') throw new BerthError('invalid', `${what}: cannot mount over the container's root "/"`);
  return norm;
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * Docker's `RAMInBytes` (go-units): a decimal number with an optional binary unit `b k m g t p`, case
 * insensitive, optionally followed by `b`/`ib` (`64m`, `64MB`, `64MiB`, `1.5g`, `512 k`, `100`). Fractions
 * are allowed and truncated to whole bytes, as Docker does. Negative numbers, unknown units (`12q`)
 * and values beyond 2^53 − 1 are `invalid`.
 */
export function parseBytes(text: string, what = 'size'): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(text.trim());
  if (!m) {
    throw new BerthError('invalid', `${what}: invalid size "${text}" (use a number of bytes with an optional unit b, k, m, g, e.g. 64m or 1.5g)`);
  }
  const value = Math.trunc(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!);
  if (!Number.isSafeInteger(value)) throw new BerthError('invalid', `${what}: size "${text}" is too large`);
  return value;
}

/** `--memory-swap`: a size, or `-1` for unlimited swap. */
export function parseMemorySwap(text: string): number {
  return text.trim() === '-1' ? -1 : parseBytes(text, '--memory-swap');
}

/** `--cpus 0.5`: a positive decimal, at least 0.01 (Docker's granularity); at most the host's CPUs is the caller's check. */
export function parseCpus(text: string): number {
  const t = text.trim();
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(t)) throw new BerthError('invalid', `--cpus: invalid number "${text}" (e.g. 0.5 or 2)`);
  const cpus = Number(t);
  if (!(cpus >= 0.01) || !Number.isFinite(cpus)) throw new BerthError('invalid', `--cpus: ${text} is out of range: use at least 0.01`);
  return cpus;
}

/** A non-negative (or, with `allowMinusOne`, -1) decimal integer. */
export function parseInteger(text: string, what: string, opts: { min?: number; max?: number } = {}): number {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) throw new BerthError('invalid', `${what}: "${text}" is not an integer`);
  const n = Number(t);
  const min = opts.min ?? 0;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new BerthError('invalid', `${what}: ${text} is out of range ${min}…${max}`);
  return n;
}

/** `no`, `always`, `unless-stopped`, `on-failure[:N]`; empty = `no`. */
export function parseRestart(text: string): RestartPolicy {
  const [name = '', count, ...rest] = text.trim().split(':');
  if (rest.length > 0) throw new BerthError('usage', `--restart: invalid policy "${text}"`);
  if (name === 'on-failure') {
    if (count === undefined) return { name };
    const n = parseInteger(count, '--restart on-failure retry count');
    return n === 0 ? { name } : { name, maxRetries: n };
  }
  if (name === 'no' || name === '' || name === 'always' || name === 'unless-stopped') {
    if (count !== undefined) throw new BerthError('invalid', `--restart: a maximum retry count is only allowed with on-failure, not with "${name || 'no'}"`);
    return { name: name === '' ? 'no' : name };
  }
  throw new BerthError('invalid', `--restart: unknown policy "${name}" (use no, on-failure[:N], always or unless-stopped)`);
}

/**
 * Docker's `-v SRC:DST[:OPTS]`. An absolute SRC is a bind mount, anything else a named volume (name
 * validated). OPTS is a comma list of `ro`/`rw`, a bind propagation (`rprivate` … `rslave`) and the
 * SELinux labels `z`/`Z` (accepted and ignored: berth applies no labels). `nocopy` is accepted: berth
 * never copies image content into a volume anyway; so are compose's `cached`, `delegated` and
 * `consistent`, which tune Docker Desktop's file sharing and mean nothing on Linux.
 */
export function parseVolume(text: string): VolumeMount {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new BerthError('usage', `-v: "${text}" is not SRC:DST[:ro|rw] (SRC an absolute host path or a volume name)`);
  }
  const [src = '', dst = '', opts] = parts;
  let readOnly = false;
  let propagation: MountPropagation | undefined;
  for (const o of opts?.split(',') ?? []) {
    if (o === 'ro') readOnly = true;
    else if (o === 'rw') readOnly = false;
    else if ((PROPAGATIONS as readonly string[]).includes(o)) propagation = o as MountPropagation;
    else if (!NO_OP_VOLUME_OPTIONS.has(o)) throw new BerthError('invalid', `-v ${text}: unknown option "${o}" (use ro, rw or a propagation: ${PROPAGATIONS.join(', ')})`);
  }
  const target = validateContainerPath(dst, `-v ${text}`);
  if (src.startsWith('/')) {
    if (src.split('/').includes('..')) throw new BerthError('invalid', `-v ${text}: host path must not contain ".."`);
    return { source: path.posix.normalize(src), target, readOnly, kind: 'bind', ...(propagation && { propagation }) };
  }
  if (propagation !== undefined) throw new BerthError('invalid', `-v ${text}: a propagation applies to bind mounts only`);
  if (src.startsWith('.') || src.includes('/')) throw new BerthError('invalid', `-v ${text}: a host path must be absolute ("${src}" is relative)`);
  return { source: validateVolumeName(src), target, readOnly, kind: 'volume' };
}

/** Docker's `--device HOST[:CONTAINER][:PERMISSIONS]`; a second part made only of r/w/m is PERMISSIONS. */
export function parseDevice(text: string): DeviceMapping {
  const parts = text.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new BerthError('usage', `--device: "${text}" is not HOST[:CONTAINER][:PERMISSIONS]`);
  const [hostPath = ''] = parts;
  let containerPath = hostPath;
  let permissions = 'rwm';
  if (parts.length === 3) {
    containerPath = parts[1]!;
    permissions = parts[2]!;
  } else if (parts.length === 2) {
    if (/^[rwm]+$/.test(parts[1]!)) permissions = parts[1]!;
    else containerPath = parts[1]!;
  }
  const perms = normalizePermissions(permissions);
  if (perms === undefined) throw new BerthError('invalid', `--device ${text}: invalid permissions "${permissions}" (a combination of r, w and m)`);
  if (!hostPath.startsWith('/')) throw new BerthError('invalid', `--device ${text}: host path "${hostPath}" must be absolute`);
  if (hostPath.split('/').includes('..')) throw new BerthError('invalid', `--device ${text}: host path must not contain ".."`);
  return { hostPath: path.posix.normalize(hostPath), containerPath: validateContainerPath(containerPath, `--device ${text}`), permissions: perms };
}

/** `wr` → `rw`; undefined when not a non-empty set of r, w, m without repeats. */
function normalizePermissions(p: string): string | undefined {
  if (!/^[rwm]{1,3}$/.test(p) || new Set(p).size !== p.length) return undefined;
  return ['r', 'w', 'm'].filter((c) => p.includes(c)).join('');
}

/** tmpfs mount flags the kernel (and Docker's --tmpfs) take without a value. */
const TMPFS_FLAGS = new Set([
  'ro', 'rw', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'sync', 'async', 'dirsync', 'atime', 'noatime', 'diratime', 'nodiratime',
  'relatime', 'norelatime', 'strictatime', 'nostrictatime', 'lazytime', 'nolazytime', 'mand', 'nomand', 'noswap',
]);
/** tmpfs options with a value; size and mode are checked further. */
const TMPFS_DATA = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol', 'huge']);

/**
 * Docker's `--tmpfs DST[:OPTS]`, e.g. `/run:size=64m,mode=1777`. Options are the tmpfs mount options
 * (flags like `exec`, `ro`, `nosuid`; `size`, `mode`, `uid`, `gid`, `nr_inodes`, `nr_blocks`, `mpol`,
 * `huge`); anything else is refused naming it, rather than failing later in the runtime's mount. A size
 * the kernel would not read (`1.5g`, `64MB`) is passed as bytes. `notmpcopyup` is what berth does anyway;
 * `tmpcopyup` (copy the image's files up) is not supported.
 */
export function parseTmpfs(text: string, what = `--tmpfs ${text}`): TmpfsMount {
  const i = text.indexOf(':');
  const dst = i < 0 ? text : text.slice(0, i);
  const options: string[] = [];
  for (const o of i < 0 ? [] : text.slice(i + 1).split(',').filter((x) => x !== '')) {
    const [key = '', value] = o.split('=', 2) as [string, string | undefined];
    if (o === 'notmpcopyup') continue;
    if (value === undefined ? !TMPFS_FLAGS.has(key) : !TMPFS_DATA.has(key) || !/^[A-Za-z0-9_.:+-]+$/.test(value)) {
      throw new BerthError('invalid', `${what}: invalid tmpfs option "${o}"${o === 'tmpcopyup' ? ' (copying the image\'s files up is not supported)' : ''}`);
    }
    if (key === 'mode' && !/^[0-7]{3,4}$/.test(value!)) throw new BerthError('invalid', `${what}: mode must be octal, e.g. 1777`);
    if (key === 'size') {
      const bytes = parseBytes(value!, `${what} size`);
      options.push(/^\d+[kmg]?$/i.test(value!) ? o : `size=${bytes}`);
    } else options.push(o);
  }
  return { target: validateContainerPath(dst, what), options };
}

/**
 * `-e K=V` → `K=V`. A bare `K` takes the value from `callerEnv` when one is given (and is dropped,
 * `undefined`, when unset there, as Docker does); without `callerEnv` a bare key is a usage error.
 */
export function parseEnv(text: string, callerEnv?: Readonly<Record<string, string | undefined>>): string | undefined {
  const i = text.indexOf('=');
  const key = i < 0 ? text : text.slice(0, i);
  if (key === '' || /\s/.test(key) || key.includes('\0') || text.includes('\0')) throw new BerthError('invalid', `-e: invalid environment variable "${text}"`);
  if (i >= 0) return text;
  if (callerEnv === undefined) throw new BerthError('usage', `-e ${text}: expected KEY=VALUE`);
  const value = callerEnv[key];
  return value === undefined ? undefined : `${key}=${value}`;
}

/** `--label K=V` (a bare `K` is an empty label, as Docker). */
export function parseLabel(text: string): [string, string] {
  const i = text.indexOf('=');
  const key = i < 0 ? text : text.slice(0, i);
  if (key === '') throw new BerthError('invalid', `--label: invalid label "${text}"`);
  return [key, i < 0 ? '' : text.slice(i + 1)];
}

/** `TERM|SIGTERM|15` → `SIGTERM`; `what` names the flag in the error. */
export function parseSignal(text: string, what = '--stop-signal'): string {
  const t = text.trim().toUpperCase();
  const signals = osConstants.signals as Record<string, number>;
  if (/^\d+$/.test(t)) {
    const name = Object.keys(signals).find((k) => signals[k] === Number(t));
    if (name !== undefined) return name;
  } else {
    const name = t.startsWith('SIG') ? t : `SIG${t}`;
    if (signals[name] !== undefined) return name;
  }
  throw new BerthError('invalid', `${what}: unknown signal "${text}"`);
}

const ULIMITS: Record<string, string> = {
  core: 'RLIMIT_CORE', cpu: 'RLIMIT_CPU', data: 'RLIMIT_DATA', fsize: 'RLIMIT_FSIZE', locks: 'RLIMIT_LOCKS', memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE', nice: 'RLIMIT_NICE', nofile: 'RLIMIT_NOFILE', nproc: 'RLIMIT_NPROC', rss: 'RLIMIT_RSS', rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME', sigpending: 'RLIMIT_SIGPENDING', stack: 'RLIMIT_STACK',
};

/** Docker's `--ulimit nofile=1024[:2048]`. Unlimited (-1) is not accepted: give a number. */
export function parseUlimit(text: string): Ulimit {
  const m = /^([a-z]+)=(\d+)(?::(\d+))?$/.exec(text.trim());
  if (!m) throw new BerthError('usage', `--ulimit: "${text}" is not NAME=SOFT[:HARD] with non-negative numbers`);
  const type = ULIMITS[m[1]!];
  if (type === undefined) throw new BerthError('invalid', `--ulimit: unknown limit "${m[1]}" (one of ${Object.keys(ULIMITS).join(', ')})`);
  const soft = parseInteger(m[2]!, `--ulimit ${m[1]}`);
  const hard = m[3] === undefined ? soft : parseInteger(m[3], `--ulimit ${m[1]}`);
  if (soft > hard) throw new BerthError('invalid', `--ulimit ${text}: soft limit ${soft} is above the hard limit ${hard}`);
  return { type, soft, hard };
}
