import fs from 'node:fs';
import path from 'node:path';
import { devicesCgroupDir, prepareDevicesCgroup, removeDevicesCgroup } from '../cgroup/devices-v1.js';
import type { LinuxDeviceCgroup } from '../cgroup/resources.js';
import { BerthError } from '../errors.js';
import type { OciRuntime } from './oci-runtime.js';

/**
 * The engine's side of device isolation (the runtime's DeviceEnforcement says who enforces): no
 * container whose device rules nobody would enforce is created or started, and where berth itself
 * keeps the rules (crun on a hybrid host) their cgroup is prepared before each start and removed with
 * the container.
 */

/** Throws `host` unless the container's device rules will be enforced (a privileged container has none to enforce). */
export function assertDevicesEnforced(rt: OciRuntime, name: string, privileged: boolean | undefined): void {
  if (rt.devices.by !== 'none' || privileged === true) return;
  throw new BerthError('host', `cannot start ${name}: ${rt.devices.note}`, {
    hint: 'mount the cgroup v1 devices controller, or boot with the unified cgroup v2 layout (systemd.unified_cgroup_hierarchy=1); berth doctor explains',
  });
}

/**
 * Before a start: where berth keeps the rules, writes the spec's `linux.resources.devices` (the spec in
 * `bundle` is the one truth about them) into the container's devices cgroup and returns its
 * cgroup.procs file for the monitor's --join-cgroup; undefined where the runtime enforces them itself.
 */
export function prepareDeviceRules(rt: OciRuntime, id: string, bundle: string): string | undefined {
  if (rt.devices.by !== 'berth-v1') return undefined;
  const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { linux?: { resources?: { devices?: LinuxDeviceCgroup[] } } };
  const rules = spec.linux?.resources?.devices;
  if (rules === undefined || rules.length === 0) throw new BerthError('runtime', `the spec of ${id} has no device rules to enforce`);
  const dir = devicesCgroupDir(rt.devices.hierarchy, id);
  prepareDevicesCgroup(dir, rules);
  return path.join(dir, 'cgroup.procs');
}

/** After a removal: the devices cgroup berth made for the container, if any. */
export function releaseDeviceRules(rt: OciRuntime, id: string): void {
  if (rt.devices.by === 'berth-v1') removeDevicesCgroup(devicesCgroupDir(rt.devices.hierarchy, id));
}
