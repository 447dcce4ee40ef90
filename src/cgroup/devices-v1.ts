import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { PARENT_NAME } from './parent.js';
import type { LinuxDeviceCgroup } from './resources.js';

/**
 * A container's cgroup in the v1 `devices` hierarchy, prepared by berth for a runtime that does not
 * manage cgroups itself: crun on a hybrid host runs with `--cgroup-manager=disabled` (it refuses hybrid
 * layouts) and would otherwise enforce no device rule at all, so that a container with CAP_MKNOD could
 * make and open any device node (/dev/kmsg, /dev/hwrng, /dev/mmcblk0). berth-monitor moves the runtime
 * process into this cgroup before it execs (`--join-cgroup`), so the container's processes are born
 * in it. The rules are the spec's `linux.resources.devices`, written as the kernel's devices.allow /
 * devices.deny lines, in order, as runc does on v1.
 */

/** `<hierarchy>/berth/<id>`: the same place runc would use for its v1 cgroups. */
export function devicesCgroupDir(hierarchy: string, id: string): string {
  return path.join(hierarchy, PARENT_NAME, id);
}

/** One rule as a devices.allow/deny line: `c 1:3 rwm`, `a *:* rwm` (absent numbers = `*`). */
export function deviceRuleLine(r: LinuxDeviceCgroup): string {
  return `${r.type ?? 'a'} ${r.major ?? '*'}:${r.minor ?? '*'} ${r.access}`;
}

/**
 * Creates (or reuses) the cgroup and writes the rules. A rule list that starts with a deny-all resets
 * the cgroup to deny everything (`a` written to devices.deny), so a restart with changed rules leaves
 * nothing of the old ones. Throws `host` naming the file when the kernel refuses a write.
 */
export function prepareDevicesCgroup(dir: string, rules: readonly LinuxDeviceCgroup[]): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const r of rules) {
    const file = path.join(dir, r.allow ? 'devices.allow' : 'devices.deny');
    const line = deviceRuleLine(r);
    try {
      fs.writeFileSync(file, line);
    } catch (err) {
      throw new BerthError('host', `cannot write "${line}" to ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Removes the cgroup once nothing runs in it; already gone is fine, still busy is left for the next removal. */
export function removeDevicesCgroup(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch (err) {
    if (!isErrno(err, 'ENOENT') && !isErrno(err, 'EBUSY')) throw err;
  }
}
