import { BerthError } from '../errors.js';
import { PRIORITY_POLICIES, type PriorityClass } from './priority.js';

/**
 * Run options → OCI `linux.resources`, and `linux.resources` → the cgroup v2 files a runtime writes
 * (REFERENCE §4: runc's and crun's conversions). Pure functions: nothing here touches the host.
 */

/** An OCI `linux.resources.devices` rule. */
export interface LinuxDeviceCgroup {
  readonly allow: boolean;
  readonly type?: 'a' | 'c' | 'b';
  /** Omitted = any (`*`). */
  readonly major?: number;
  readonly minor?: number;
  readonly access: string;
}

export interface LinuxMemory {
  /** `memory.max` in bytes; -1 unlimited. */
  readonly limit?: number;
  /** `memory.low` in bytes. */
  readonly reservation?: number;
  /** OCI: memory + swap in bytes; -1 unlimited swap. */
  readonly swap?: number;
}

export interface LinuxCpu {
  readonly shares?: number;
  readonly quota?: number;
  readonly period?: number;
  /** `cpuset.cpus`, a CPU list such as `0-1,3`. */
  readonly cpus?: string;
}

/** OCI runtime-spec 1.0.2 `linux.resources` (the parts berth sets). */
export interface LinuxResources {
  readonly devices?: readonly LinuxDeviceCgroup[];
  readonly memory?: LinuxMemory;
  readonly cpu?: LinuxCpu;
  readonly pids?: { readonly limit: number };
  readonly blockIO?: { readonly weight: number };
  /** cgroup v2 files written last, overriding the above. */
  readonly unified?: Readonly<Record<string, string>>;
}

/** The board profile's per-container defaults (`BoardInfo.containerDefaults`). */
export interface ContainerDefaults {
  readonly memoryHighBytes: number;
  readonly memoryMaxBytes: number;
  readonly pidsLimit: number;
  readonly cpuWeight: number;
}

/** The run options that set resources, with Docker's semantics (`RunOptions` extends it). */
export interface ResourceOptions {
  /** Bytes. */
  readonly memory?: number;
  /** Bytes (soft guarantee, `memory.low`). */
  readonly memoryReservation?: number;
  /** Docker semantics: memory + swap in bytes; -1 = unlimited swap; equal to `memory` = no swap. */
  readonly memorySwap?: number;
  readonly cpus?: number;
  readonly cpuShares?: number;
  /** -1 (or 0) = unlimited. */
  readonly pidsLimit?: number;
  /** `--cpuset-cpus` / compose `cpuset`: the CPUs the container may run on, a list like `0-1,3`. */
  readonly cpusetCpus?: string;
  /** `--blkio-weight` / compose `blkio_config.weight`, 10…1000 (the runtime converts it for io.weight/io.bfq.weight). */
  readonly blkioWeight?: number;
}

export const CPU_PERIOD_US = 100_000;

/** A cpuset list (`0-2,4`): numbers and ascending ranges, comma-separated; returned without spaces. */
export function parseCpuList(text: string, what = '--cpuset-cpus'): string {
  const t = text.replace(/\s+/g, '');
  const ok = t !== '' && t.split(',').every((part) => {
    const m = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(part);
    return m !== null && (m[2] === undefined || Number(m[2]) >= Number(m[1]));
  });
  if (!ok) throw new BerthError('invalid', `${what}: "${text}" is not a CPU list such as 0-1,3`);
  return t;
}

/**
 * runc's and crun's cgroup v1 shares → v2 weight: `ceil(10^((L² + 125·L)/612 − 7/34))` with
 * L = log2(shares), mapping 2…262144 onto 1…10000 (1024 → 100). 0 = unset → 0.
 */
export function cpuSharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  return Math.ceil(10 ** ((l * l + 125 * l) / 612 - 7 / 34));
}

/**
 * The OCI resources for a container. Explicit options win; what is not given comes from the board
 * profile's defaults:
 * - memory: `--memory` is `memory.max`. Without it the limit is the profile's `memoryMaxBytes` and
 *   `memory.high` (throttle before OOM) the profile's `memoryHighBytes`.
 * - swap (OCI `swap` = memory + swap): off unless asked (berth's small-RAM policy), so unset → `swap =
 *   limit`; `--memory-swap -1` → unlimited; `--memory-swap` equal to `--memory` → none.
 * - cpu: `--cpus` → quota `round(cpus·100000)` per period 100000; `--cpu-shares` → `shares` (the runtime
 *   converts to `cpu.weight`); neither → the profile's `cpu.weight` through `unified`.
 * - pids: `--pids-limit`, else the profile's; ≤ 0 → -1 (max).
 * - `memory.oom.group = 1`: an OOM kill takes the whole container, never leaves it half-alive.
 * - priority (label `berth.priority`, see priority.ts): scales the default cpu.weight, and `critical`
 *   protects its memory allowance (`memory.low` = reservation, else memory.high, else the limit).
 */
export function toLinuxResources(opts: ResourceOptions, defaults: ContainerDefaults, priority: PriorityClass = 'normal'): LinuxResources {
  const unified: Record<string, string> = { 'memory.oom.group': '1' };
  const policy = PRIORITY_POLICIES[priority];

  const limit = opts.memory ?? (defaults.memoryMaxBytes > 0 ? defaults.memoryMaxBytes : undefined);
  if (opts.memory === undefined && defaults.memoryHighBytes > 0 && (limit === undefined || defaults.memoryHighBytes < limit)) {
    unified['memory.high'] = String(defaults.memoryHighBytes);
  }
  let swap: number | undefined;
  if (opts.memorySwap === -1) swap = -1;
  else if (opts.memorySwap !== undefined) {
    if (opts.memory === undefined) throw new BerthError('usage', '--memory-swap needs --memory: it is the total of memory and swap');
    if (opts.memorySwap < opts.memory) throw new BerthError('invalid', `--memory-swap (${opts.memorySwap}) must be at least --memory (${opts.memory}): it is memory plus swap`);
    swap = opts.memorySwap;
  } else if (limit !== undefined) swap = limit;
  if (opts.memoryReservation !== undefined && limit !== undefined && opts.memoryReservation > limit) {
    throw new BerthError('invalid', `--memory-reservation (${opts.memoryReservation}) must not exceed the memory limit (${limit})`);
  }
  const high = unified['memory.high'] !== undefined ? Number(unified['memory.high']) : undefined;
  const reservation = opts.memoryReservation ?? (policy.protectMemory ? high ?? limit : undefined);
  const memory: LinuxMemory = {
    ...(limit !== undefined && { limit }),
    ...(reservation !== undefined && { reservation }),
    ...(swap !== undefined && { swap }),
  };

  let cpu: LinuxCpu | undefined;
  if (opts.cpus !== undefined) {
    if (!(opts.cpus >= 0.01)) throw new BerthError('invalid', `--cpus: ${opts.cpus} is out of range: use at least 0.01`);
    cpu = { quota: Math.round(opts.cpus * CPU_PERIOD_US), period: CPU_PERIOD_US };
  }
  if (opts.cpuShares !== undefined) {
    if (!Number.isInteger(opts.cpuShares) || opts.cpuShares < 2 || opts.cpuShares > 262144) throw new BerthError('invalid', `--cpu-shares: ${opts.cpuShares} is out of range 2…262144`);
    cpu = { ...cpu, shares: opts.cpuShares };
  } else if (defaults.cpuWeight > 0) {
    unified['cpu.weight'] = String(Math.min(10000, Math.max(1, Math.round(defaults.cpuWeight * policy.cpuWeightFactor))));
  }

  if (opts.cpusetCpus !== undefined) cpu = { ...cpu, cpus: parseCpuList(opts.cpusetCpus) };

  const pidsRaw = opts.pidsLimit ?? defaults.pidsLimit;
  const pids = { limit: pidsRaw > 0 ? pidsRaw : -1 };

  return {
    ...(Object.keys(memory).length > 0 && { memory }),
    ...(cpu !== undefined && { cpu }),
    pids,
    ...(opts.blkioWeight !== undefined && { blockIO: { weight: opts.blkioWeight } }),
    unified,
  };
}

/**
 * The cgroup v2 files (name → content) runc/crun write for these resources, in their order, `unified`
 * last and overriding. Devices are not files on v2 (an eBPF program) and are left out. Used by
 * `berth inspect` to show limits, and by tests.
 */
export function cgroupV2Files(r: LinuxResources): Record<string, string> {
  const files: Record<string, string> = {};
  const m = r.memory;
  if (m?.limit !== undefined && m.limit !== 0) files['memory.max'] = m.limit < 0 ? 'max' : String(m.limit);
  if (m?.reservation !== undefined && m.reservation !== 0) files['memory.low'] = m.reservation < 0 ? 'max' : String(m.reservation);
  if (m?.swap !== undefined && m.swap !== 0) {
    if (m.swap < 0) files['memory.swap.max'] = 'max';
    else if (m.limit === undefined || m.limit < 0) files['memory.swap.max'] = String(m.swap);
    else files['memory.swap.max'] = String(Math.max(0, m.swap - m.limit));
  }
  const c = r.cpu;
  if (c?.shares !== undefined && c.shares !== 0) files['cpu.weight'] = String(cpuSharesToWeight(c.shares));
  if ((c?.quota !== undefined && c.quota !== 0) || (c?.period !== undefined && c.period !== 0)) {
    const quota = c.quota === undefined || c.quota <= 0 ? 'max' : String(c.quota);
    files['cpu.max'] = `${quota} ${c.period !== undefined && c.period > 0 ? c.period : CPU_PERIOD_US}`;
  }
  if (c?.cpus !== undefined && c.cpus !== '') files['cpuset.cpus'] = c.cpus;
  if (r.pids !== undefined && r.pids.limit !== 0) files['pids.max'] = r.pids.limit < 0 ? 'max' : String(r.pids.limit);
  for (const [k, v] of Object.entries(r.unified ?? {})) files[k] = v;
  return files;
}
