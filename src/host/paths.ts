import path from 'node:path';

/**
 * Where berth reads the host's kernel interfaces from. In production every path is the real one; tests
 * point `hostRoot` at a fixture tree so `/proc/cpuinfo` is read from `<hostRoot>/proc/cpuinfo`.
 * Only reads of host facts go through here (/proc, /sys, /boot, /lib/modules); executables are
 * still looked up on the real PATH.
 */
/** berth's state root when neither `--root` nor BERTH_ROOT says otherwise. */
export const DEFAULT_ROOT = '/var/lib/berth';

export interface HostPaths {
  /** Prefix for every host read; `/` on a real host. */
  readonly hostRoot: string;
  /** Maps an absolute host path like `/proc/meminfo` to where it is read from. */
  resolve(hostPath: string): string;
}

/** Host paths under `hostRoot`. The cgroup root is found from mountinfo and resolved the same way. */
export function hostPaths(hostRoot = '/'): HostPaths {
  const root = path.resolve(hostRoot);
  const resolve = (hostPath: string): string => {
    if (!path.isAbsolute(hostPath)) throw new Error(`host path must be absolute: ${hostPath}`);
    return root === '/' ? hostPath : path.join(root, hostPath);
  };
  return { hostRoot: root, resolve };
}

/** Host paths from the environment: `BERTH_HOST_ROOT=DIR` redirects host reads into DIR. */
export function hostPathsFromEnv(env: NodeJS.ProcessEnv = process.env): HostPaths {
  const root = env.BERTH_HOST_ROOT;
  return hostPaths(root !== undefined && root !== '' ? root : '/');
}
