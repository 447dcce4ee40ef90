import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { devicesCgroupDir } from '../cgroup/devices-v1.js';
import type { CgroupLayout } from '../cgroup/layout.js';
import { BerthError } from '../errors.js';
import { which } from '../host/which.js';

const execFileAsync = promisify(execFile);

/** An OCI runtime and how berth must call it on this host. */
/** The OCI runtimes berth drives, in its preference on a unified cgroup v2 host. */
export const OCI_RUNTIMES = ['crun', 'runc'] as const;
export type RuntimeName = (typeof OCI_RUNTIMES)[number];

export interface OciRuntime {
  readonly name: RuntimeName;
  readonly path: string;
  /** Global options for every call: berth's own state dir, and on hybrid hosts crun's cgroup manager off. */
  readonly globalArgs: readonly string[];
  /** Extra monitor flags for create/start (crun on a hybrid host needs a private cgroup2 mount). */
  readonly monitorFlags: readonly string[];
  /** Whether the cgroup v2 limits in the spec are enforced on this host. */
  readonly cgroupsEnforced: boolean;
  /** Why limits are or are not enforced, for inspect and doctor. */
  readonly limitsNote: string;
  /** Who enforces the containers' device rules here; `none` means berth refuses to start them. */
  readonly devices: DeviceEnforcement;
}

/**
 * How the device rules of a container (`linux.resources.devices`) are enforced:
 * - `ebpf`: cgroup v2; the runtime attaches a device program to the container's cgroup;
 * - `runtime-v1`: runc on a hybrid or v1 host, through the v1 devices controller;
 * - `berth-v1`: crun with its cgroup manager disabled (hybrid host); berth prepares a cgroup in the v1
 *   devices hierarchy at `hierarchy` and the monitor starts the runtime inside it (cgroup/devices-v1.ts);
 * - `none`: no devices controller to use; no container but a privileged one (which asks for every
 *   device anyway) may start.
 */
export type DeviceEnforcement =
  | { readonly by: 'ebpf' | 'runtime-v1' | 'none'; readonly note: string }
  | { readonly by: 'berth-v1'; readonly hierarchy: string; readonly note: string };

const NEEDED = ['memory', 'cpu', 'pids'];

/**
 * Chooses the runtime: `preferred` (config, BERTH_RUNTIME) when given, else crun on a unified cgroup v2
 * host and runc on a hybrid one, where runc still enforces device rules through the v1 devices
 * controller while crun can only run with its cgroup manager disabled.
 */
export function selectRuntime(layout: CgroupLayout, searchPath: string, preferred?: string): OciRuntime {
  if (preferred !== undefined && preferred !== 'crun' && preferred !== 'runc') {
    throw new BerthError('usage', `unknown runtime "${preferred}": berth supports crun and runc`);
  }
  const unified = layout.mode === 'unified';
  const order: RuntimeName[] = preferred ? [preferred] : unified ? [...OCI_RUNTIMES] : ['runc', 'crun'];
  for (const name of order) {
    const path = which(name, searchPath);
    if (!path) continue;
    const enforced = unified && NEEDED.every((c) => layout.v2Controllers.includes(c));
    const root = `--root=/run/berth/${name}`;
    const limitsNote = enforced
      ? 'cgroup v2 limits enforced'
      : unified
        ? `limits not enforced: cgroup v2 lacks ${NEEDED.filter((c) => !layout.v2Controllers.includes(c)).join(', ')} (see berth doctor)`
        : `limits not enforced: ${layout.mode} cgroup layout (berth enforces limits only on cgroup v2; see berth doctor)`;
    const devices = deviceEnforcement(layout, name);
    if (name === 'crun' && !unified) {
      return { name, path, globalArgs: [root, '--cgroup-manager=disabled'], monitorFlags: ['--private-cgroup2'], cgroupsEnforced: false, limitsNote, devices };
    }
    return { name, path, globalArgs: [root], monitorFlags: [], cgroupsEnforced: enforced, limitsNote, devices };
  }
  throw new BerthError('host', `no OCI runtime found (${order.join(', ')})`, { hint: 'apt-get install crun' });
}

/** Who enforces device rules for `name` on this cgroup layout (see {@link DeviceEnforcement}). */
export function deviceEnforcement(layout: CgroupLayout, name: RuntimeName): DeviceEnforcement {
  if (layout.mode === 'unified') return { by: 'ebpf', note: `device rules enforced by ${name} (cgroup v2 device program)` };
  const hierarchy = layout.v1.find((h) => h.controllers.includes('devices'))?.mountPoint;
  if (hierarchy === undefined) {
    return { by: 'none', note: `no cgroup devices controller on this ${layout.mode} cgroup host: device rules cannot be enforced, so only privileged containers may start` };
  }
  if (name === 'runc') return { by: 'runtime-v1', note: `device rules enforced by runc (cgroup v1 devices controller at ${hierarchy})` };
  return { by: 'berth-v1', hierarchy, note: `device rules enforced by berth's cgroup in the v1 devices controller at ${hierarchy} (crun runs without a cgroup manager here)` };
}

/**
 * The command line for `RUNTIME GLOBAL… ARGS…` run by berth itself (exec). Where berth keeps the
 * device rules (`berth-v1`), the process must be born inside the container's devices cgroup too, or an
 * exec'd process would escape them: a shell puts itself there and then becomes the runtime.
 */
export function runtimeCommand(rt: OciRuntime, id: string, args: readonly string[]): [string, string[]] {
  const argv = [...rt.globalArgs, ...args];
  if (rt.devices.by !== 'berth-v1') return [rt.path, argv];
  const procs = `${devicesCgroupDir(rt.devices.hierarchy, id)}/cgroup.procs`;
  return ['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', procs, rt.path, ...argv]];
}

/** Runs a runtime command; returns stdout, or throws a `runtime` error carrying the runtime's stderr. */
export async function runtimeCall(rt: OciRuntime, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(rt.path, [...rt.globalArgs, ...args], { timeout: timeoutMs, encoding: 'utf8' });
    return stdout;
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new BerthError('runtime', `${rt.name} ${args[0]} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}

/**
 * `exec ID ARGV…` in a running container (healthchecks): the process's exit code and its first 4 KiB of
 * output, or exit code -1 when it timed out. Only a runtime that could not start it at all throws.
 */
export async function runtimeExec(rt: OciRuntime, id: string, argv: readonly string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
  try {
    const [file, args] = runtimeCommand(rt, id, ['exec', id, ...argv]);
    const { stdout, stderr } = await execFileAsync(file, args, { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 1 << 20 });
    return { exitCode: 0, output: (stdout + stderr).slice(0, 4096) };
  } catch (err) {
    const e = err as { code?: unknown; killed?: boolean; stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.slice(0, 4096);
    if (e.killed) return { exitCode: -1, output: `timed out after ${timeoutMs} ms` };
    if (typeof e.code === 'number') return { exitCode: e.code, output };
    throw new BerthError('runtime', `${rt.name} exec failed: ${e.message}`, { cause: err });
  }
}

/** `delete -f`, where "no such container" counts as done: callers want it gone, not to have been there. */
export async function runtimeDelete(rt: OciRuntime, id: string): Promise<void> {
  try {
    await runtimeCall(rt, ['delete', '-f', id]);
  } catch (err) {
    if (!(err instanceof BerthError && NOT_FOUND.test(err.message))) throw err;
  }
}

const NOT_FOUND = /does not exist|not found|No such file/i;

/** The runtime's view of a container, or undefined when it does not know the id. */
export async function runtimeState(rt: OciRuntime, id: string): Promise<{ status: string; pid: number } | undefined> {
  try {
    const out = await runtimeCall(rt, ['state', id], 10_000);
    const s = JSON.parse(out) as { status: string; pid: number };
    return { status: s.status, pid: s.pid };
  } catch (err) {
    if (err instanceof BerthError && NOT_FOUND.test(err.message)) return undefined;
    throw err;
  }
}
