import type { LinuxDeviceCgroup } from '../cgroup/resources.js';
import { BerthError } from '../errors.js';
import { parseBytes, parseInteger } from './options-parse.js';
import type { NetworkMode } from './options.js';

/**
 * Parsers for the confinement, kernel and logging options `berth run` and compose services take, with
 * Docker's names, syntax and validation: --security-opt, --sysctl, --device-cgroup-rule, --group-add,
 * --log-driver/--log-opt. Each fails with a BerthError naming the flag and the value.
 */

/** What `--security-opt` entries ask for, once parsed. */
export interface SecurityOptions {
  /** `no-new-privileges[:true|false]`; undefined = berth's default (on, except for --privileged). */
  readonly noNewPrivileges?: boolean;
  /** `systempaths=unconfined`: no masked or read-only /proc and /sys paths. */
  readonly unconfinedSystemPaths?: boolean;
  /** `seccomp=unconfined`, or `seccomp=PATH` (an absolute host path to a Docker-format profile); absent = berth's default filter. */
  readonly seccomp?: string;
  /** `apparmor=PROFILE` (a profile loaded on the host) or `apparmor=unconfined`; absent = none (berth loads no profile of its own). */
  readonly apparmor?: string;
}

/**
 * Docker's `--security-opt` (KEY=VALUE or the legacy KEY:VALUE); compose's `security_opt` entries go
 * through here too (pass `what`). berth applies no SELinux label, so only `label=disable` is accepted;
 * a seccomp profile must be an absolute path (it is read when the container is created, and an agent
 * has no meaningful working directory); whether an AppArmor profile can be applied is a host fact,
 * checked by the spec builder. Merges into `prev` so repeated flags add up.
 */
export function parseSecurityOpt(text: string, prev: SecurityOptions = {}, what = '--security-opt'): SecurityOptions {
  const t = text.trim();
  const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(t);
  const key = m?.[1];
  const value = m?.[2];
  const refuse = (why: string): never => {
    throw new BerthError('invalid', `${what} ${t}: ${why}`);
  };
  switch (key) {
    case 'no-new-privileges': {
      if (value !== undefined && value !== 'true' && value !== 'false') refuse('use no-new-privileges, no-new-privileges:true or no-new-privileges:false');
      return { ...prev, noNewPrivileges: value !== 'false' };
    }
    case 'label':
      if (value === 'disable') return prev;
      return refuse('berth applies no SELinux labels; only label=disable is accepted');
    case 'apparmor':
      if (value === undefined || value === '' || !/^[A-Za-z0-9_./:@+-]+$/.test(value)) return refuse('name a profile loaded on the host, or unconfined');
      return { ...prev, apparmor: value };
    case 'seccomp':
      if (value === 'unconfined') return { ...prev, seccomp: value };
      if (value === undefined || value === '') return refuse('use seccomp=unconfined or seccomp=/absolute/path/to/profile.json');
      if (!value.startsWith('/')) return refuse('the profile path must be absolute');
      return { ...prev, seccomp: value };
    case 'systempaths':
      if (value === 'unconfined') return { ...prev, unconfinedSystemPaths: true };
      return refuse('only systempaths=unconfined is accepted');
    default:
      return refuse('unknown security option (berth takes no-new-privileges, seccomp=unconfined|PATH, apparmor=PROFILE|unconfined, label=disable, systempaths=unconfined)');
  }
}

/** IPC sysctls Docker lets a container set (they live in its own IPC namespace). */
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/**
 * Docker's `--sysctl KEY=VALUE`: only namespaced sysctls (moby opts.ValidateSysctl), because the others
 * would change the host for everyone: the IPC ones, `fs.mqueue.*`, and `net.*` (checked against the
 * network mode by {@link validateSysctls}). `net/ipv4/ip_forward` is written `net.ipv4.ip_forward`.
 */
export function parseSysctl(text: string, what = '--sysctl'): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw new BerthError('usage', `${what}: "${text}" is not KEY=VALUE`);
  const key = text.slice(0, i).trim().replaceAll('/', '.');
  const value = text.slice(i + 1);
  if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$/.test(key)) throw new BerthError('invalid', `${what}: invalid sysctl name "${key}"`);
  if (!IPC_SYSCTLS.has(key) && !key.startsWith('fs.mqueue.') && !key.startsWith('net.')) {
    throw new BerthError('invalid', `${what} ${key}: not a namespaced sysctl; a container may set only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and net.*`);
  }
  return [key, value];
}

/** Cross-check: `net.*` sysctls need the container's own network namespace (Docker refuses them with the host's). */
export function validateSysctls(sysctls: Readonly<Record<string, string>> | undefined, network: NetworkMode): void {
  for (const key of Object.keys(sysctls ?? {})) {
    if (key.startsWith('net.') && network === 'host') {
      throw new BerthError('invalid', `--sysctl ${key}: net.* sysctls are not allowed with the host's network (they would change the host)`);
    }
  }
}

/** Docker's `--device-cgroup-rule 'c 13:* rwm'`: type a|b|c, major and minor numbers or `*`, access rwm. */
export function parseDeviceCgroupRule(text: string, what = '--device-cgroup-rule'): LinuxDeviceCgroup {
  const m = /^([abc]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/.exec(text.trim());
  if (!m || new Set(m[4]).size !== m[4]!.length) throw new BerthError('invalid', `${what}: "${text}" is not TYPE MAJOR:MINOR ACCESS, e.g. 'c 189:* rwm'`);
  const num = (n: string): number | undefined => (n === '*' ? undefined : parseInteger(n, what, { max: 0xfffff }));
  const major = num(m[2]!);
  const minor = num(m[3]!);
  return { allow: true, type: m[1] as 'a' | 'b' | 'c', ...(major !== undefined && { major }), ...(minor !== undefined && { minor }), access: m[4]! };
}

/** `--group-add`: a group name (resolved in the image's /etc/group at create) or a numeric gid. */
export function parseGroupAdd(text: string, what = '--group-add'): string {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    parseInteger(t, what, { max: 0xfffffffe });
    return t;
  }
  if (!/^[a-zA-Z_][a-zA-Z0-9_.-]*\$?$/.test(t)) throw new BerthError('invalid', `${what}: "${text}" is neither a group name nor a numeric gid`);
  return t;
}

/**
 * Where a container's output goes. `json-file` and `local` both mean berth's capped log (the monitor
 * writes it, rotating at `maxSize` bytes over `maxFile` files; the board's storage class decides when
 * they are not given); `none` keeps no log at all.
 */
export interface LogOptions {
  readonly driver: 'json-file' | 'local' | 'none';
  readonly maxSize?: number;
  readonly maxFile?: number;
}

const LOG_DRIVERS = ['json-file', 'local', 'none'] as const;

/**
 * `--log-driver` with its `--log-opt KEY=VALUE`s (compose: `logging: {driver, options}`). Only the options
 * that map onto berth's capped logs are taken (max-size, max-file); others are refused naming them,
 * rather than ignored.
 */
export function parseLogOptions(driver: string | undefined, opts: readonly string[] | Readonly<Record<string, string>>, what = '--log-opt'): LogOptions {
  const d = driver ?? 'json-file';
  if (!(LOG_DRIVERS as readonly string[]).includes(d)) {
    throw new BerthError('invalid', `log driver "${d}" is not supported: berth keeps json-file/local logs (its own capped files) or none`);
  }
  const entries = Array.isArray(opts) ? opts.map((o) => splitOpt(o, what)) : Object.entries(opts);
  if (d === 'none' && entries.length > 0) throw new BerthError('invalid', `${what}: the none log driver takes no options (got ${entries.map(([k]) => k).join(', ')})`);
  let out: LogOptions = { driver: d as LogOptions['driver'] };
  for (const [key, value] of entries) {
    if (key === 'max-size') {
      const maxSize = parseBytes(value, `${what} max-size`);
      if (maxSize < 4096) throw new BerthError('invalid', `${what} max-size=${value}: use at least 4k`);
      out = { ...out, maxSize };
    } else if (key === 'max-file') {
      out = { ...out, maxFile: parseInteger(value, `${what} max-file`, { min: 1, max: 100 }) };
    } else {
      throw new BerthError('invalid', `${what}: log option "${key}" is not supported (berth takes max-size and max-file)`);
    }
  }
  return out;
}

function splitOpt(text: string, what: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw new BerthError('usage', `${what}: "${text}" is not KEY=VALUE`);
  return [text.slice(0, i), text.slice(i + 1)];
}
