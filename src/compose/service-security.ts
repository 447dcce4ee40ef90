import { normalizeCapability } from '../runtime/capabilities.js';
import {
  parseDevice, parseDeviceCgroupRule, parseGroupAdd, parseIpcMode, parseLogOptions, parsePidMode, parseSecurityOpt, parseSignal, parseSysctl, parseUlimit, type RunOptions, type SecurityOptions,
} from '../runtime/options.js';
import type { ServiceSpec } from '../protocol/types.js';
import type { ServiceContext } from './model.js';
import { joinedServiceMode } from './service-network.js';
import { atKey, invalidAt, keyPath, keyValueList, scalarText } from './service-key.js';

/**
 * A service's confinement, device, kernel and process keys → RunOptions, through `berth run`'s parsers
 * (one parser per thing): privileged, cap_add/cap_drop, security_opt, group_add, devices,
 * device_cgroup_rules, sysctls, ulimits, pid and ipc (`service:S` as network_mode's), oom_score_adj, init, tty, stdin_open, stop_signal,
 * logging.
 */

type Security = Pick<RunOptions,
  'privileged' | 'capAdd' | 'capDrop' | 'security' | 'groupAdd' | 'devices' | 'deviceCgroupRules' | 'sysctls' | 'ulimits' | 'pidMode' | 'ipcMode'
  | 'oomScoreAdj' | 'init' | 'tty' | 'stdinOpen' | 'stopSignal' | 'log'>;

/** Long-syntax devices become the short form's text, so parseDevice stays the one reader of a device. */
function deviceText(d: NonNullable<ServiceSpec['devices']>[number]): string {
  return typeof d === 'string' ? d : [d.source, d.target ?? d.source, ...(d.permissions !== undefined ? [d.permissions] : [])].join(':');
}

/** `nofile: 1024` or `nofile: {soft, hard}` → `--ulimit`'s text for parseUlimit. */
function ulimitText(name: string, v: NonNullable<ServiceSpec['ulimits']>[string]): string {
  return typeof v === 'number' ? `${name}=${v}` : `${name}=${v.soft}:${v.hard}`;
}

export function serviceSecurity(service: string, svc: ServiceSpec, ctx: ServiceContext): Security {
  const k = (key: string): string => keyPath(service, key);
  const logging = svc.logging;
  return {
    ...(svc.privileged === true && { privileged: true }),
    ...(svc.cap_add !== undefined && { capAdd: svc.cap_add.map((c) => normalizeCapability(c, k('cap_add'))) }),
    ...(svc.cap_drop !== undefined && { capDrop: svc.cap_drop.map((c) => normalizeCapability(c, k('cap_drop'))) }),
    ...(svc.security_opt !== undefined && { security: svc.security_opt.reduce<SecurityOptions>((acc, o) => parseSecurityOpt(o, acc, k('security_opt')), {}) }),
    ...(svc.group_add !== undefined && { groupAdd: svc.group_add.map((g) => parseGroupAdd(String(g), k('group_add'))) }),
    devices: (svc.devices ?? []).map((d) => atKey(k('devices'), () => parseDevice(deviceText(d)))),
    ...(svc.device_cgroup_rules !== undefined && { deviceCgroupRules: svc.device_cgroup_rules.map((r) => parseDeviceCgroupRule(r, k('device_cgroup_rules'))) }),
    ...(svc.sysctls !== undefined && { sysctls: Object.fromEntries(keyValueList(svc.sysctls).map((s) => parseSysctl(s, k('sysctls')))) }),
    ...(svc.ulimits !== undefined && { ulimits: Object.entries(svc.ulimits).map(([n, v]) => atKey(k(`ulimits.${n}`), () => parseUlimit(ulimitText(n, v)))) }),
    ...(svc.pid !== undefined && { pidMode: parsePidMode(joinedServiceMode(service, 'pid', svc.pid, ctx), k('pid')) }),
    ...(svc.ipc !== undefined && { ipcMode: parseIpcMode(joinedServiceMode(service, 'ipc', svc.ipc, ctx), k('ipc')) }),
    ...(svc.oom_score_adj !== undefined && { oomScoreAdj: svc.oom_score_adj }),
    ...(svc.init === true && { init: true }),
    ...(svc.tty === true && { tty: true }),
    ...(svc.stdin_open === true && { stdinOpen: true }),
    ...(svc.stop_signal !== undefined && { stopSignal: parseSignal(svc.stop_signal, k('stop_signal')) }),
    ...(logging !== undefined && {
      log: atKey(k('logging'), () => parseLogOptions(logging.driver, Object.fromEntries(Object.entries(logging.options ?? {}).map(([o, v]) => [o, scalarText(v)])), k('logging.options'))),
    }),
  };
}
