import fs from 'node:fs';
import { Cgroup } from './v2.js';

/**
 * The berth parent cgroup (`<cgroup root>/berth`) that holds every container. Its `memory.max` is the
 * board's container budget (RAM minus the profile's reserve for the OS and the agent), so all containers
 * together can never push the host into the global OOM killer: when they outgrow the budget the kernel
 * reclaims and, failing that, OOM-kills inside this subtree only, by oom_score_adj (best-effort first).
 */

export const PARENT_NAME = 'berth';

/** Controllers containers need delegated; others the host offers are enabled too, when present. */
const WANTED = ['cpu', 'memory', 'pids', 'io', 'cpuset'];

export interface ParentLimits {
  /** Bytes for all containers together; 0 or undefined leaves `memory.max` at max. */
  readonly memoryMaxBytes?: number;
}

export interface ParentSetup {
  readonly cgroup: Cgroup;
  /** What was written, for the agent's log (`file → value`). */
  readonly applied: Readonly<Record<string, string>>;
}

function enable(cg: Cgroup, available: readonly string[]): string {
  const current = new Set((cg.read('cgroup.subtree_control') ?? '').trim().split(/\s+/).filter(Boolean));
  const missing = WANTED.filter((c) => available.includes(c) && !current.has(c));
  // One write per controller: a single refused one (e.g. cpuset on some kernels) must not block the rest.
  for (const c of missing) {
    try {
      cg.write('cgroup.subtree_control', `+${c}`);
    } catch {
      /* reported by berth doctor; the runtime fails clearly if a limit needs it */
    }
  }
  return (cg.read('cgroup.subtree_control') ?? '').trim();
}

/** Creates the parent if needed, delegates controllers to it, and sets its budget. Idempotent. */
export function ensureParent(cgroupRoot: string, limits: ParentLimits): ParentSetup {
  const root = new Cgroup(cgroupRoot);
  const available = (root.read('cgroup.controllers') ?? '').trim().split(/\s+/);
  const applied: Record<string, string> = {};
  applied['root cgroup.subtree_control'] = enable(root, available);
  const parent = root.child(PARENT_NAME);
  fs.mkdirSync(parent.dir, { recursive: true });
  const max = limits.memoryMaxBytes !== undefined && limits.memoryMaxBytes > 0 ? String(limits.memoryMaxBytes) : 'max';
  if (parent.read('memory.max')?.trim() !== max) parent.write('memory.max', max);
  applied['memory.max'] = max;
  applied['cgroup.subtree_control'] = enable(parent, available);
  return { cgroup: parent, applied };
}
