import fs from 'node:fs';
import { readHostText } from '../host/read.js';
import { toBerthError } from '../errors.js';
import { selectRuntime } from '../runtime/oci-runtime.js';
import { kernelHasMountSetattr } from '../runtime/spec/host.js';
import { DEFAULT_SECCOMP_CANDIDATES, describeSeccompSource, findDefaultSeccompProfile, SECCOMP_PACKAGE } from '../runtime/seccomp-default.js';
import { validateProfile } from '../runtime/spec/seccomp-profile.js';
import type { Check } from './types.js';

/**
 * How containers are confined on this host (docs/security-containers.md): the device rules (who
 * enforces them with the runtime berth would pick), the default seccomp profile, and whether `:ro`
 * volumes can be recursively read-only.
 */

export const devicesCheck: Check = (ctx) => {
  const title = 'device isolation';
  let rt;
  try {
    rt = selectRuntime(ctx.layout, ctx.searchPath);
  } catch (err) {
    return { id: 'devices', title, status: 'warn', detail: `no OCI runtime to judge (${toBerthError(err).message})`, fix: 'see the OCI runtime check' };
  }
  if (rt.devices.by === 'none') {
    return {
      id: 'devices', title, status: 'fail', detail: `${rt.name}: ${rt.devices.note}`,
      fix: 'mount the cgroup v1 devices controller (mount -t cgroup -o devices cgroup /sys/fs/cgroup/devices), or boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2',
    };
  }
  // A container with CAP_MKNOD (Docker's default set) can make any device node in its /dev: only the cgroup's rules stop it opening one.
  return { id: 'devices', title, status: 'ok', detail: `${rt.name}: ${rt.devices.note}` };
};

/**
 * The default seccomp profile: which one berth uses (the system's, else the agent bundle's copy: the
 * same lookup as the engine's), present and in a shape berth can convert. `candidates` is injectable for tests.
 */
export function seccompCheck(candidates = DEFAULT_SECCOMP_CANDIDATES): Check {
  return function seccomp() {
    const title = 'default seccomp profile';
    const fix = `apt-get install ${SECCOMP_PACKAGE}`;
    const profile = findDefaultSeccompProfile(candidates);
    if (profile === undefined) {
      return { id: 'seccomp', title, status: 'fail', detail: `none of ${candidates.join(', ')} exists; berth starts no container without a seccomp filter (unless asked: --security-opt seccomp=unconfined)`, fix };
    }
    let text: string;
    try {
      text = fs.readFileSync(profile, 'utf8');
    } catch (err) {
      return { id: 'seccomp', title, status: 'fail', detail: `${profile}: ${(err as Error).message}; berth starts no container without a seccomp filter (unless asked: --security-opt seccomp=unconfined)`, fix };
    }
    try {
      const p = validateProfile(JSON.parse(text) as unknown, profile);
      return { id: 'seccomp', title, status: 'ok', detail: `${profile}, ${describeSeccompSource(profile)}: ${p.syscalls?.length ?? 0} rules, default ${p.defaultAction}; berth adds Docker's keyring, io_uring and namespace denials` };
    } catch (err) {
      return { id: 'seccomp', title, status: 'fail', detail: toBerthError(err).message, fix: `reinstall ${SECCOMP_PACKAGE}` };
    }
  };
}

export const readOnlyBindsCheck: Check = (ctx) => {
  const title = 'recursively read-only volumes';
  const release = readHostText(ctx.host, '/proc/sys/kernel/osrelease')?.trim();
  if (kernelHasMountSetattr(release)) return { id: 'rro', title, status: 'ok', detail: `kernel ${release} has mount_setattr: :ro volumes are read-only all the way down` };
  return {
    id: 'rro', title, status: 'warn',
    detail: `kernel ${release ?? 'unknown'} lacks mount_setattr (Linux 5.12+): a :ro volume is read-only at its top mount only, mounts below its source stay writable`,
    fix: 'upgrade the kernel (Raspberry Pi OS Bookworm ships 6.x)',
  };
};
