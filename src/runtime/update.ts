import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';
import type { Cgroup } from '../cgroup/v2.js';
import { writeFileAtomic } from '../host/fsync.js';
import type { OciSpec } from './spec/types.js';
import { cgroupV2Files, toLinuxResources, type ContainerDefaults, type LinuxResources, type ResourceOptions } from '../cgroup/resources.js';
import { priorityOf } from '../cgroup/priority.js';
import { validateRunOptions, type RestartPolicy, type RunOptions } from './options.js';

/**
 * docker update: what may change on a container, running or not, with the run options' meaning
 * (ResourceOptions). Absent = unchanged.
 */
export type ContainerUpdate = Pick<ResourceOptions, 'memory' | 'memoryReservation' | 'memorySwap' | 'cpus' | 'cpuShares' | 'pidsLimit'> & { readonly restart?: RestartPolicy };

/**
 * The cgroup v2 files a resource update rewrites, each with the kernel's default for when the new
 * resources leave it unset (a `memory.high` the profile set goes once `--memory` replaces it). Devices
 * and the other files stay as the start set them.
 */
const UPDATED_FILES: Readonly<Record<string, string>> = {
  'memory.max': 'max', 'memory.low': '0', 'memory.high': 'max', 'memory.swap.max': 'max', 'cpu.max': 'max 100000', 'cpu.weight': '100', 'pids.max': 'max',
};

export interface UpdatePlan {
  /** The container's run options after the update: what the records keep. */
  readonly options: RunOptions;
  /** The new `linux.resources` (devices left to the caller, which keeps the spec's own). */
  readonly resources: LinuxResources;
  /** The cgroup v2 files to write into a running container's cgroup, in the order to write them. */
  readonly files: ReadonlyArray<readonly [string, string]>;
}

/**
 * Pure: the run options, spec resources and cgroup files after `update`, checked as `create` checks
 * them (BerthError naming the flag). Docker's rule that a new `--memory` above the current swap total
 * needs `--memory-swap` too is kept: the check is the same validateRunOptions.
 */
export function planUpdate(current: RunOptions, update: ContainerUpdate, defaults: ContainerDefaults): UpdatePlan {
  if (Object.values(update).every((v) => v === undefined)) throw new BerthError('usage', 'update needs at least one of --memory, --memory-reservation, --memory-swap, --cpus, --cpu-shares, --pids-limit, --restart');
  const merged: RunOptions = { ...current };
  for (const [k, v] of Object.entries(update)) if (v !== undefined) (merged as unknown as Record<string, unknown>)[k] = v;
  // A new memory limit without a swap total keeps berth's no-swap default (swap total = memory), as at create.
  const options: RunOptions = update.memory !== undefined && update.memorySwap === undefined && current.memorySwap !== -1 ? { ...merged, memorySwap: undefined } as RunOptions : merged;
  const clean = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as unknown as RunOptions;
  validateRunOptions(clean);
  const resources = toLinuxResources(clean, defaults, priorityOf(clean.labels));
  const all = cgroupV2Files(resources);
  const files = Object.entries(UPDATED_FILES).map(([f, unset]) => [f, all[f] ?? unset] as const);
  return { options: clean, resources, files };
}

/** A container's OCI spec as written at create (and rewritten by updates): `<bundle>/config.json`. */
export function readBundleSpec(bundle: string): OciSpec {
  return JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as OciSpec;
}

/** The size the next start's terminal gets (`process.consoleSize`): the attaching CLI's, known only at start. */
export function setConsoleSize(bundle: string, size: { readonly rows: number; readonly cols: number }): void {
  const spec = readBundleSpec(bundle);
  spec.process.consoleSize = { height: size.rows, width: size.cols };
  writeFileAtomic(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2), 0o644, { durable: false });
}

/**
 * Applies a plan where the runtime enforces cgroups: the bundle's spec gets the new resources (its
 * device rules kept) for the next start, and `live`, a running container's cgroup, the new files at
 * once (a file this kernel lacks, memory.swap.max without swap accounting, is skipped).
 */
export function applyUpdate(plan: UpdatePlan, bundle: string, live: Cgroup | undefined): void {
  const spec = readBundleSpec(bundle);
  spec.linux.resources = { ...plan.resources, ...(spec.linux.resources?.devices && { devices: spec.linux.resources.devices }) };
  writeFileAtomic(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2), 0o644);
  if (live) for (const [f, v] of plan.files) if (live.read(f) !== undefined) live.write(f, v);
}
