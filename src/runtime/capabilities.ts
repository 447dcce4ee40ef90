import { BerthError } from '../errors.js';
import type { OciCapabilities } from './spec/types.js';

/**
 * Linux capabilities by number (linux/capability.h, up to CAP_CHECKPOINT_RESTORE in 5.9): the one table
 * the flag parser (names) and the spec builder (bounding-set masks) share.
 */
export const CAPABILITY_NUMBERS: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0, CAP_DAC_OVERRIDE: 1, CAP_DAC_READ_SEARCH: 2, CAP_FOWNER: 3, CAP_FSETID: 4, CAP_KILL: 5, CAP_SETGID: 6, CAP_SETUID: 7,
  CAP_SETPCAP: 8, CAP_LINUX_IMMUTABLE: 9, CAP_NET_BIND_SERVICE: 10, CAP_NET_BROADCAST: 11, CAP_NET_ADMIN: 12, CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14, CAP_IPC_OWNER: 15, CAP_SYS_MODULE: 16, CAP_SYS_RAWIO: 17, CAP_SYS_CHROOT: 18, CAP_SYS_PTRACE: 19, CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21, CAP_SYS_BOOT: 22, CAP_SYS_NICE: 23, CAP_SYS_RESOURCE: 24, CAP_SYS_TIME: 25, CAP_SYS_TTY_CONFIG: 26, CAP_MKNOD: 27,
  CAP_LEASE: 28, CAP_AUDIT_WRITE: 29, CAP_AUDIT_CONTROL: 30, CAP_SETFCAP: 31, CAP_MAC_OVERRIDE: 32, CAP_MAC_ADMIN: 33, CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35, CAP_BLOCK_SUSPEND: 36, CAP_AUDIT_READ: 37, CAP_PERFMON: 38, CAP_BPF: 39, CAP_CHECKPOINT_RESTORE: 40,
};

/** Docker's (moby caps.DefaultCapabilities) default set. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
] as const;

/** The bit mask of a capability list (`0xa80425fb` for Docker's default set), as /proc/PID/status shows it. */
export function capabilityMask(caps: readonly string[]): bigint {
  return caps.reduce((m, c) => m | (1n << BigInt(CAPABILITY_NUMBERS[c] ?? 0)), 0n);
}

/**
 * A `--cap-add`/`--cap-drop`/`cap_add` entry as Docker reads it: case-insensitive, with or without the
 * `CAP_` prefix, or `ALL`. Returns `ALL` or the `CAP_*` name; an unknown capability is `invalid`, named.
 */
export function normalizeCapability(text: string, what: string): string {
  const upper = text.trim().toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (CAPABILITY_NUMBERS[name] === undefined) throw new BerthError('invalid', `${what}: unknown capability "${text}"`, { hint: 'names as in capabilities(7), e.g. NET_ADMIN or CAP_SYS_RAWIO, or ALL' });
  return name;
}

export interface CapabilityRequest {
  readonly privileged?: boolean;
  /** Normalized names or `ALL` ({@link normalizeCapability}). */
  readonly capAdd?: readonly string[];
  readonly capDrop?: readonly string[];
}

/**
 * The process's capability set with Docker's rules (moby caps.TweakCapabilities): privileged = all;
 * `cap-add ALL` = all but the drops; `cap-drop ALL` = only the adds; otherwise the default set minus the
 * drops plus the adds (an add wins over a drop of the same name). Bounding, effective and permitted get
 * the set; inheritable and ambient stay empty (as Docker since CVE-2022-24769), so a non-root process
 * keeps none across exec. Capabilities outside `hostBounding` (berth's own bounding set) are left out:
 * no runtime can grant them.
 */
export function resolveCapabilities(req: CapabilityRequest, hostBounding?: bigint): OciCapabilities {
  const all = Object.keys(CAPABILITY_NUMBERS);
  const add = req.capAdd ?? [];
  const drop = req.capDrop ?? [];
  let caps: readonly string[];
  if (req.privileged || add.includes('ALL')) caps = req.privileged ? all : all.filter((c) => !drop.includes(c));
  else if (drop.includes('ALL')) caps = add;
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add.filter((c) => !(DEFAULT_CAPABILITIES as readonly string[]).includes(c))];
  const granted = [...new Set(caps)].filter((c) => hostBounding === undefined || (hostBounding & (1n << BigInt(CAPABILITY_NUMBERS[c]!))) !== 0n);
  return { bounding: [...granted], effective: [...granted], permitted: [...granted], inheritable: [], ambient: [] };
}
