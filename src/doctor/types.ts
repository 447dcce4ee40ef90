import type { BoardInfo } from '../board/index.js';
import type { CgroupLayout } from '../cgroup/layout.js';
import type { HostPaths } from '../host/paths.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One finding. `fail` means berth cannot do its job here; `warn` means it can, with a stated loss. */
export interface CheckResult {
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  readonly detail: string;
  /** Exactly what to change, when something should change. */
  readonly fix?: string;
}

export interface DoctorContext {
  readonly host: HostPaths;
  /** The state root (`--root`). */
  readonly root: string;
  /** PATH used to look for OCI runtimes. */
  readonly searchPath: string;
  /** The host's cgroup mounts, read once for all checks. */
  readonly layout: CgroupLayout;
  /** Board info, when detection worked; checks tailor their fixes to it. */
  readonly board?: BoardInfo;
}

export type Check = (ctx: DoctorContext) => CheckResult;
