import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../../errors.js';
import { validateContainerPath, volumeDataPath, type TmpfsMount, type VolumeMount } from '../options.js';
import type { HostFacts } from './host.js';
import type { OciMount } from './types.js';

/**
 * REFERENCE §5 plus current moby's: powercap (CVE-2020-8694) and /proc/interrupts (per-CPU interrupt
 * counts are a side channel on other tenants' activity). Bind-mounted over with /dev/null (files) or
 * an empty ro tmpfs (dirs).
 */
export const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
  '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
] as const;

const CPU_DIR = '/sys/devices/system/cpu';

/**
 * {@link MASKED_PATHS} plus, as moby, each CPU's `thermal_throttle` directory that exists on this host
 * (an OCI spec takes no globs, so they are listed per CPU; runtimes fail on nothing for a missing one,
 * but listing only real ones keeps the spec honest).
 */
export function maskedPaths(host: Pick<HostFacts, 'statDevice'>): string[] {
  const cpus = host.statDevice(CPU_DIR);
  const throttle = cpus?.kind === 'dir'
    ? cpus.entries.filter((e) => /^cpu\d+$/.test(e)).map((e) => `${CPU_DIR}/${e}/thermal_throttle`).filter((p) => host.statDevice(p)?.kind === 'dir')
    : [];
  return [...MASKED_PATHS, ...throttle];
}

/** REFERENCE §5: remounted read-only. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'] as const;

/** /dev/shm's size, as Docker (64 MiB). */
export const SHM_SIZE_BYTES = 64 * 1024 * 1024;

export interface StandardMountOptions {
  /** `--shm-size` in bytes; default {@link SHM_SIZE_BYTES}. */
  readonly shmSize?: number;
  /** `--privileged`: /sys and /sys/fs/cgroup read-write. */
  readonly privileged?: boolean;
  /** The kernel has mount_setattr (5.12+): `:ro` binds become `rro`, read-only all the way down. */
  readonly recursiveReadOnly?: boolean;
}

/**
 * The mounts every container gets (Docker's defaults). /sys is always a fresh sysfs, read-only: with
 * the host's network too (the runtime mounts it before dropping privileges, in the host's network
 * namespace, so it shows the host's net devices, as Docker's does). It used to be a bind of the host's
 * /sys, whose `ro` held only for the top mount: tracefs, debugfs and configfs under it stayed writable.
 */
export function standardMounts(opts: StandardMountOptions = {}): OciMount[] {
  // A privileged container gets /sys and its cgroup tree writable, as Docker's (for GPIO export, LEDs …).
  const access = opts.privileged ? 'rw' : 'ro';
  const sys: OciMount = { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', access] };
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    sys,
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', access] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${opts.shmSize ?? SHM_SIZE_BYTES}`] },
  ];
}

/** Targets a user mount may not replace: the runtime needs them as they are. */
const RESERVED = new Set(['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup']);

/**
 * Reserved targets a bind of the host's own tree may replace, as docker and balena allow: `/proc` and
 * `/sys` (balena's procfs/sysfs features bind the host's), and `/dev` for a privileged container
 * (`-v /dev:/dev`, so hot-plugged devices appear). The runtime still mounts /dev/pts, /dev/shm and
 * /dev/mqueue on top, in the container's own mount namespace.
 */
function replaceable(m: OciMount, privileged: boolean): boolean {
  if (m.type !== 'bind' || m.source !== m.destination) return false;
  return m.destination === '/proc' || m.destination === '/sys' || (m.destination === '/dev' && privileged);
}

/** `--tmpfs`: Docker's defaults `nosuid,nodev,noexec` unless the user's options say otherwise. */
export function tmpfsMount(t: TmpfsMount): OciMount {
  const opts = [...t.options];
  const has = (...names: string[]) => opts.some((o) => names.includes(o));
  const defaults = [has('suid', 'nosuid') ? undefined : 'nosuid', has('dev', 'nodev') ? undefined : 'nodev', has('exec', 'noexec') ? undefined : 'noexec'];
  return { destination: t.target, type: 'tmpfs', source: 'tmpfs', options: [...defaults.filter((o): o is string => o !== undefined), ...opts] };
}

/**
 * `-v`: a bind of a host path or of a named volume's `_data` directory, recursive, private propagation,
 * `ro` when asked: `rro` (runc and crun apply it with mount_setattr, so mounts below the source are
 * read-only too) when `recursiveReadOnly`, else plain `ro`, which binds the top mount read-only and
 * leaves mounts below it as they are on the host (inspect and doctor say so). A missing bind source is
 * a `notFound` error (berth does not create host directories, unlike `docker run -v`); named volume
 * directories are created by the caller before the spec is built.
 */
export function volumeMount(v: VolumeMount, stateRoot: string, checkSource = true, recursiveReadOnly = false): OciMount {
  const source = v.kind === 'volume' ? volumeDataPath(stateRoot, v.source) : v.source;
  if (!path.isAbsolute(source)) throw new BerthError('invalid', `-v ${v.source}:${v.target}: host path must be absolute`);
  if (checkSource && v.kind === 'bind' && !fs.existsSync(source)) {
    throw new BerthError('notFound', `-v ${v.source}:${v.target}: host path ${v.source} does not exist`, { hint: 'create it first; berth does not create bind-mount sources' });
  }
  return { destination: v.target, type: 'bind', source, options: ['rbind', v.propagation ?? 'rprivate', v.readOnly ? (recursiveReadOnly ? 'rro' : 'ro') : 'rw'] };
}

/** Number of path components, for Docker's parent-before-child mount order. */
const depth = (p: string): number => p.split('/').filter(Boolean).length;

/**
 * The full mount list: the standard mounts (a user mount on /dev/shm or /dev/mqueue replaces the
 * default), then the user's tmpfs and bind mounts sorted parents first (stable), as Docker does.
 */
export function buildMounts(opts: { volumes: readonly VolumeMount[]; tmpfs: readonly TmpfsMount[]; stateRoot: string; checkSources?: boolean } & StandardMountOptions): OciMount[] {
  const user = [...opts.tmpfs.map(tmpfsMount), ...opts.volumes.map((v) => volumeMount(v, opts.stateRoot, opts.checkSources ?? true, opts.recursiveReadOnly === true))];
  const seen = new Set<string>();
  for (const m of user) {
    const target = validateContainerPath(m.destination, 'mount');
    if (RESERVED.has(target) && !replaceable({ ...m, destination: target }, opts.privileged === true)) throw new BerthError('invalid', `cannot mount over ${target}: the runtime provides it`);
    if (seen.has(target)) throw new BerthError('invalid', `duplicate mount point ${target}`);
    seen.add(target);
    m.destination = target;
  }
  // A replaced reserved mount takes the standard one's place, so /dev/pts & co. still go on top of it.
  const replacing = new Map(user.filter((m) => RESERVED.has(m.destination)).map((m) => [m.destination, m]));
  const std = standardMounts(opts).flatMap((m) => replacing.get(m.destination) ?? (seen.has(m.destination) ? [] : [m]));
  const sorted = user.filter((m) => !replacing.has(m.destination)).map((m, i) => ({ m, i })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i).map((x) => x.m);
  return [...std, ...sorted];
}
