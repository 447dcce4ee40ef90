import { constants as osConstants } from 'node:os';
import { priorityOf } from '../cgroup/priority.js';
import type { ResourceOptions } from '../cgroup/resources.js';
import path from 'node:path';
import { BerthError } from '../errors.js';
import type { ExtraHost, PortMapping } from '../network/types.js';

/**
 * What `berth run` and compose pass to the runtime, with Docker's names and semantics. The parsers
 * below turn command-line strings into these values and fail with `usage` (malformed flag syntax) or
 * `invalid` (well-formed but unacceptable value) BerthErrors that name the offending input.
 */

export type RestartPolicy =
  | { readonly name: 'no' }
  | { readonly name: 'always' }
  | { readonly name: 'unless-stopped' }
  /** `maxRetries` 0 or absent = retry forever, as Docker. */
  | { readonly name: 'on-failure'; readonly maxRetries?: number };

export interface VolumeMount {
  /** `bind`: an absolute host path. `volume`: the volume's name (its data lives in {@link volumeDataPath}). */
  readonly source: string;
  /** Absolute path inside the container. */
  readonly target: string;
  readonly readOnly: boolean;
  readonly kind: 'bind' | 'volume';
}

export interface DeviceMapping {
  readonly hostPath: string;
  readonly containerPath: string;
  /** Non-empty subset of `rwm` (read, write, mknod), in that order. */
  readonly permissions: string;
}

export interface TmpfsMount {
  readonly target: string;
  /** mount options as given (`size=64m`, `mode=1777`, `exec` …); the spec builder adds the safe defaults. */
  readonly options: readonly string[];
}

/**
 * `none` = own namespace with only `lo` (`private` is its former name, still accepted); `host` = the
 * host's; anything else names a bridge network (`bridge` = the default one), see src/network/mode.ts.
 */
export type NetworkMode = 'host' | 'none' | 'private' | (string & {});

export interface Ulimit {
  /** OCI name, e.g. `RLIMIT_NOFILE`. */
  readonly type: string;
  readonly soft: number;
  readonly hard: number;
}

/** Resource fields (memory, memoryReservation, memorySwap, cpus, cpuShares, pidsLimit) come from cgroup/resources.ts. */
export interface RunOptions extends ResourceOptions {
  readonly name: string;
  /** Replaces the image's Entrypoint and drops the image's Cmd (Docker's `--entrypoint`). `[]` = no entrypoint. */
  readonly entrypoint?: readonly string[];
  /** Replaces the image's Cmd when non-empty. */
  readonly cmd?: readonly string[];
  /** `K=V` entries, applied after the image's Env (later wins). */
  readonly env: readonly string[];
  readonly workdir?: string;
  /** `uid`, `uid:gid`, `name`, `name:group` (resolved against the image's /etc/passwd and /etc/group). */
  readonly user?: string;
  readonly volumes: readonly VolumeMount[];
  readonly devices: readonly DeviceMapping[];
  readonly tmpfs: readonly TmpfsMount[];
  readonly readOnly: boolean;
  readonly network: NetworkMode;
  /** `-p`, with ephemeral host ports resolved at create time (bridge networks only). */
  readonly ports?: readonly PortMapping[];
  /** `--dns`: resolv.conf's servers instead of the network's (bridge networks only). */
  readonly dns?: readonly string[];
  /** `--network-alias`: more DNS names on the network besides the container's name (user networks only). */
  readonly networkAliases?: readonly string[];
  /** `--add-host NAME:IP` lines for /etc/hosts (bridge networks only). */
  readonly extraHosts?: readonly ExtraHost[];
  readonly hostname?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly restart: RestartPolicy;
  /** Signal name like `SIGTERM`. */
  readonly stopSignal?: string;
  /** Seconds. */
  readonly stopTimeout?: number;
  /** Extra rlimits (`--ulimit`); clamped to the host's hard limits by the spec builder. */
  readonly ulimits?: readonly Ulimit[];
}

/** Options for a plain `berth run NAME IMAGE`: no mounts, no devices, private network, restart `no`. */
export function defaultRunOptions(name: string): RunOptions {
  return { name: validateContainerName(name), env: [], volumes: [], devices: [], tmpfs: [], readOnly: false, network: 'private', labels: {}, restart: { name: 'no' } };
}

const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export function validateContainerName(name: string): string {
  if (!CONTAINER_NAME.test(name)) {
    throw new BerthError('invalid', `invalid container name "${name}": use 1–128 characters from [a-zA-Z0-9_.-], starting with a letter or digit`);
  }
  return name;
}

/** Docker's volume name rule (two characters at least). */
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function validateVolumeName(name: string): string {
  if (!VOLUME_NAME.test(name) || name.length > 255) {
    throw new BerthError('invalid', `invalid volume name "${name}": use 2–255 characters from [a-zA-Z0-9_.-], starting with a letter or digit (or give an absolute host path to bind-mount)`);
  }
  return name;
}

/** Where a named volume's data lives under the state root: `<root>/volumes/<name>/_data`. The caller creates it. */
export function volumeDataPath(root: string, name: string): string {
  return path.join(root, 'volumes', validateVolumeName(name), '_data');
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
 * validated). OPTS is a comma list of `ro`/`rw`; SELinux labels `z`/`Z` are accepted and ignored.
 */
export function parseVolume(text: string): VolumeMount {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new BerthError('usage', `-v: "${text}" is not SRC:DST[:ro|rw] (SRC an absolute host path or a volume name)`);
  }
  const [src = '', dst = '', opts] = parts;
  let readOnly = false;
  for (const o of opts?.split(',') ?? []) {
    if (o === 'ro') readOnly = true;
    else if (o === 'rw') readOnly = false;
    else if (o !== 'z' && o !== 'Z') throw new BerthError('invalid', `-v ${text}: unknown option "${o}" (use ro or rw)`);
  }
  const target = validateContainerPath(dst, `-v ${text}`);
  if (src.startsWith('/')) {
    if (src.split('/').includes('..')) throw new BerthError('invalid', `-v ${text}: host path must not contain ".."`);
    return { source: path.posix.normalize(src), target, readOnly, kind: 'bind' };
  }
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

/** Docker's `--tmpfs DST[:OPTS]`, e.g. `/run:size=64m,mode=1777`. Sizes are checked with {@link parseBytes}. */
export function parseTmpfs(text: string): TmpfsMount {
  const i = text.indexOf(':');
  const dst = i < 0 ? text : text.slice(0, i);
  const options = i < 0 ? [] : text.slice(i + 1).split(',').filter((o) => o !== '');
  for (const o of options) {
    if (!/^[a-z_]+(=[A-Za-z0-9_.:+-]+)?$/.test(o)) throw new BerthError('invalid', `--tmpfs ${text}: invalid mount option "${o}"`);
    if (o.startsWith('size=')) parseBytes(o.slice(5), `--tmpfs ${text} size`);
    if (o.startsWith('mode=') && !/^[0-7]{3,4}$/.test(o.slice(5))) throw new BerthError('invalid', `--tmpfs ${text}: mode must be octal, e.g. 1777`);
  }
  return { target: validateContainerPath(dst, `--tmpfs ${text}`), options };
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

/** Docker's minimum `--memory`. */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

/**
 * Cross-field checks Docker makes at create time: memory at least 6 MiB, swap total not below memory and
 * only with a memory limit, reservation not above the limit, shares in 2…262144, stop timeout ≥ 0.
 */
export function validateRunOptions(o: RunOptions): RunOptions {
  validateContainerName(o.name);
  priorityOf(o.labels);
  if (o.memory !== undefined && o.memory < MIN_MEMORY_BYTES) throw new BerthError('invalid', `--memory: minimum memory limit is 6 MiB (got ${o.memory} bytes)`);
  if (o.memorySwap !== undefined && o.memorySwap !== -1) {
    if (o.memorySwap < 0) throw new BerthError('invalid', `--memory-swap: ${o.memorySwap} is negative (use -1 for unlimited swap)`);
    if (o.memory === undefined) throw new BerthError('usage', '--memory-swap needs --memory: it is the total of memory and swap');
    if (o.memorySwap < o.memory) throw new BerthError('invalid', `--memory-swap (${o.memorySwap}) must be at least --memory (${o.memory}): it is memory plus swap`);
  }
  if (o.memoryReservation !== undefined && o.memory !== undefined && o.memoryReservation > o.memory) {
    throw new BerthError('invalid', `--memory-reservation (${o.memoryReservation}) must not exceed --memory (${o.memory})`);
  }
  if (o.cpus !== undefined && !(o.cpus >= 0.01)) throw new BerthError('invalid', `--cpus: ${o.cpus} is out of range: use at least 0.01`);
  if (o.cpuShares !== undefined && (!Number.isInteger(o.cpuShares) || o.cpuShares < 2 || o.cpuShares > 262144)) {
    throw new BerthError('invalid', `--cpu-shares: ${o.cpuShares} is out of range 2…262144`);
  }
  if (o.pidsLimit !== undefined && !Number.isInteger(o.pidsLimit)) throw new BerthError('invalid', `--pids-limit: ${o.pidsLimit} is not an integer`);
  if (o.stopTimeout !== undefined && !(o.stopTimeout >= 0)) throw new BerthError('invalid', `--stop-timeout: ${o.stopTimeout} is negative`);
  if (o.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(o.hostname)) throw new BerthError('invalid', `--hostname: invalid hostname "${o.hostname}"`);
  const targets = new Set<string>();
  for (const t of [...o.volumes.map((v) => v.target), ...o.tmpfs.map((t) => t.target)]) {
    if (targets.has(t)) throw new BerthError('invalid', `duplicate mount point ${t}`);
    targets.add(t);
  }
  return o;
}
