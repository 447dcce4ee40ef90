import { detectBoard } from '../board/index.js';
import { readCgroupLayout } from '../cgroup/layout.js';
import { toBerthError } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import { binfmtCheck, cgroupCheck, controllersCheck, namespacesCheck, overlayCheck, powerCheck } from './kernel-checks.js';
import { networkKernelCheck, networkToolsCheck } from './network-checks.js';
import { budgetCheck, freezerCheck, psiCheck, swapCheck } from './limits-checks.js';
import type { Check, CheckResult, DoctorContext } from './types.js';
import { devicesCheck, readOnlyBindsCheck, seccompCheck } from './security-checks.js';
import { diskCheck, nodeCheck, privilegesCheck, runtimeCheck } from './userspace-checks.js';

export type { CheckResult, CheckStatus } from './types.js';

export interface DoctorReport {
  /** True when nothing berth needs is missing (warnings allowed). */
  readonly ok: boolean;
  readonly board?: { profile: string; model: string };
  readonly checks: readonly CheckResult[];
}

const allChecks = (seccompProfiles?: readonly string[]): readonly Check[] => [
  cgroupCheck, controllersCheck, budgetCheck, psiCheck, freezerCheck, swapCheck, overlayCheck, namespacesCheck, runtimeCheck, devicesCheck, seccompCheck(seccompProfiles),
  readOnlyBindsCheck, binfmtCheck, diskCheck, nodeCheck, privilegesCheck, powerCheck, networkToolsCheck(), networkKernelCheck,
];

export interface DoctorOptions {
  readonly host: HostPaths;
  readonly root: string;
  /** Where to look for OCI runtimes (see systemSearchPath). */
  readonly searchPath: string;
  readonly profilesDir?: string;
  /** Where the default seccomp profile may be, in order; default DEFAULT_SECCOMP_CANDIDATES (tests give temp files). */
  readonly seccompProfiles?: readonly string[];
}

/** Checks the host for everything berth needs; never throws for a host problem, it reports it. */
export function runDoctor(opts: DoctorOptions): DoctorReport {
  const checks: CheckResult[] = [];
  let board: DoctorContext['board'];
  try {
    board = detectBoard(opts.host, opts.profilesDir);
    checks.push({ id: 'board', title: 'board', status: 'ok', detail: `${board.model} → profile ${board.profile}${board.notes.length ? ` (${board.notes.join('; ')})` : ''}` });
  } catch (err) {
    const e = toBerthError(err);
    checks.push({ id: 'board', title: 'board', status: 'fail', detail: e.message, ...(e.hint !== undefined && { fix: e.hint }) });
  }
  const ctx: DoctorContext = { host: opts.host, root: opts.root, searchPath: opts.searchPath, layout: readCgroupLayout(opts.host), ...(board && { board }) };
  for (const check of allChecks(opts.seccompProfiles)) {
    try {
      checks.push(check(ctx));
    } catch (err) {
      checks.push({ id: check.name, title: check.name, status: 'fail', detail: `check failed: ${toBerthError(err).message}` });
    }
  }
  return { ok: checks.every((c) => c.status !== 'fail'), ...(board && { board: { profile: board.profile, model: board.model } }), checks };
}
