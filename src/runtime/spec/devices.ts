import path from 'node:path';
import { BerthError } from '../../errors.js';
import type { LinuxDeviceCgroup } from '../../cgroup/resources.js';
import type { DeviceMapping } from '../options.js';
import type { HostFacts } from './host.js';
import type { OciLinuxDevice } from './types.js';

/**
 * The device cgroup: deny everything, then Docker's (runc's AllowedDevices) list: mknod of any node,
 * and use of null, zero, full, random, urandom, tty, console, ptmx and the devpts ptys. The user's
 * `--device`s follow with their own permissions.
 */
export const DEFAULT_DEVICE_RULES: readonly LinuxDeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // /dev/null
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // /dev/zero
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // /dev/full
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // /dev/random
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // /dev/urandom
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // /dev/tty
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // /dev/console
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
];

/** Depth bound for `--device DIR` (e.g. /dev/snd, /dev/bus/usb). */
const MAX_DIR_DEPTH = 8;

/**
 * `--device`s → `linux.devices` nodes (type, numbers, the host node's mode and owner) and their cgroup
 * allow rules. A directory adds every device node below it (Docker's `--device /dev/snd`). A path that
 * does not exist is `notFound`, one that is not a device node `invalid`, both naming it.
 */
export function resolveDevices(devices: readonly DeviceMapping[], host: Pick<HostFacts, 'statDevice'>): { nodes: OciLinuxDevice[]; rules: LinuxDeviceCgroup[] } {
  const nodes: OciLinuxDevice[] = [];
  const rules: LinuxDeviceCgroup[] = [];
  const add = (hostPath: string, containerPath: string, permissions: string, level: number, top: DeviceMapping): void => {
    const st = host.statDevice(hostPath);
    if (st === undefined) {
      if (level === 0) throw new BerthError('notFound', `--device ${top.hostPath}: no such device on this host`, { hint: 'check the path; on a Raspberry Pi, enable the interface (e.g. dtparam=i2c_arm=on) and reboot' });
      return; // vanished while walking a directory
    }
    if (st.kind === 'dir') {
      if (level >= MAX_DIR_DEPTH) return;
      for (const e of st.entries) add(path.posix.join(hostPath, e), path.posix.join(containerPath, e), permissions, level + 1, top);
      return;
    }
    if (st.kind === 'other') {
      if (level === 0) throw new BerthError('invalid', `--device ${top.hostPath}: ${hostPath} is not a device node`);
      return;
    }
    const existing = nodes.findIndex((n) => n.path === containerPath);
    const node: OciLinuxDevice = { path: containerPath, type: st.kind, major: st.major, minor: st.minor, fileMode: st.mode & 0o777, uid: st.uid, gid: st.gid };
    if (existing >= 0) nodes[existing] = node;
    else nodes.push(node);
    rules.push({ allow: true, type: st.kind, major: st.major, minor: st.minor, access: permissions });
  };
  for (const d of devices) add(d.hostPath, d.containerPath, d.permissions, 0, d);
  return { nodes, rules };
}

/** /dev entries a privileged container does not get from the host (runc's HostDevices skips the same). */
const HOST_DEV_SKIP = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev', 'console']);

/**
 * Every device node under the host's /dev, for `--privileged` (Docker gives them all, at their host
 * paths, with an allow-all device cgroup). Symlinks are not followed: /dev/fd and friends point into
 * /proc; the runtime makes its own /dev/pts, /dev/shm, /dev/mqueue and console.
 */
export function hostDeviceNodes(host: Pick<HostFacts, 'statDevice'>): OciLinuxDevice[] {
  const nodes: OciLinuxDevice[] = [];
  const walk = (dir: string, level: number): void => {
    const st = host.statDevice(dir, false);
    if (st?.kind !== 'dir' || level >= MAX_DIR_DEPTH) return;
    for (const e of st.entries) {
      if (level === 0 && HOST_DEV_SKIP.has(e)) continue;
      const p = path.posix.join(dir, e);
      const node = host.statDevice(p, false);
      if (node?.kind === 'dir') walk(p, level + 1);
      else if (node?.kind === 'c' || node?.kind === 'b') {
        nodes.push({ path: p, type: node.kind, major: node.major, minor: node.minor, fileMode: node.mode & 0o777, uid: node.uid, gid: node.gid });
      }
    }
  };
  walk('/dev', 0);
  return nodes;
}
