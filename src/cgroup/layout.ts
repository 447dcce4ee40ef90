import type { HostPaths } from '../host/paths.js';
import { parseMountinfo } from '../host/mountinfo.js';
import { readHostText } from '../host/read.js';

export type CgroupMode = 'unified' | 'hybrid' | 'legacy' | 'none';

/** How the host's cgroups are mounted, and which controllers berth could use through cgroup v2. */
export interface CgroupLayout {
  readonly mode: CgroupMode;
  /** Where cgroup2 is mounted (host path), if anywhere. */
  readonly v2MountPoint?: string;
  /** Controllers enabled at the cgroup2 root (`cgroup.controllers`). */
  readonly v2Controllers: readonly string[];
  /** cgroup v1 hierarchies: mount point → controllers bound there. */
  readonly v1: ReadonlyArray<{ mountPoint: string; controllers: readonly string[] }>;
}

const V1_CONTROLLERS = new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'blkio', 'perf_event', 'net_prio', 'hugetlb', 'pids', 'rdma', 'misc']);

/** Reads the layout from mountinfo. Mode `hybrid` = v1 controllers mounted beside a cgroup2 tree (systemd's hybrid). */
export function readCgroupLayout(host: HostPaths): CgroupLayout {
  const mounts = parseMountinfo(readHostText(host, '/proc/self/mountinfo') ?? '');
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  // Prefer the conventional mount point when cgroup2 is mounted more than once.
  const v2Mount = v2.find((m) => m.mountPoint === '/sys/fs/cgroup') ?? v2[0];
  const v1 = mounts
    .filter((m) => m.fsType === 'cgroup')
    .map((m) => ({ mountPoint: m.mountPoint, controllers: m.superOptions.filter((o) => V1_CONTROLLERS.has(o)) }))
    .filter((h) => h.controllers.length > 0);
  const controllersText = v2Mount ? readHostText(host, `${v2Mount.mountPoint}/cgroup.controllers`) : undefined;
  const v2Controllers = controllersText?.trim().split(/\s+/).filter(Boolean) ?? [];
  const mode: CgroupMode = v2Mount && v1.length === 0 ? 'unified' : v2Mount ? 'hybrid' : v1.length > 0 ? 'legacy' : 'none';
  return { mode, ...(v2Mount && { v2MountPoint: v2Mount.mountPoint }), v2Controllers, v1 };
}
