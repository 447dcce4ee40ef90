/**
 * The keys of the compose specification (compose-spec's schema), by the mapping they belong to. A
 * desired state uses compose's field names, so a key its schema refuses is either a compose key berth
 * does not run (said so: the user wrote valid compose) or not compose at all (a typo: "unknown key").
 * Only wording depends on these lists; what berth accepts is desired.json's alone.
 */

const TOP_LEVEL = ['version', 'name', 'include', 'services', 'networks', 'volumes', 'secrets', 'configs', 'models'];

const SERVICE = [
  'annotations', 'attach', 'build', 'blkio_config', 'cap_add', 'cap_drop', 'cgroup', 'cgroup_parent', 'command', 'configs', 'container_name',
  'cpu_count', 'cpu_percent', 'cpu_period', 'cpu_quota', 'cpu_rt_period', 'cpu_rt_runtime', 'cpu_shares', 'cpus', 'cpuset', 'credential_spec',
  'depends_on', 'deploy', 'develop', 'device_cgroup_rules', 'devices', 'dns', 'dns_opt', 'dns_search', 'domainname', 'entrypoint', 'env_file',
  'environment', 'expose', 'extends', 'external_links', 'extra_hosts', 'gpus', 'group_add', 'healthcheck', 'hostname', 'image', 'init', 'ipc',
  'isolation', 'label_file', 'labels', 'links', 'logging', 'mac_address', 'mem_limit', 'mem_reservation', 'mem_swappiness', 'memswap_limit',
  'models', 'network_mode', 'networks', 'oom_kill_disable', 'oom_score_adj', 'pid', 'pids_limit', 'platform', 'ports', 'post_start', 'pre_stop',
  'privileged', 'profiles', 'provider', 'pull_policy', 'read_only', 'restart', 'runtime', 'scale', 'secrets', 'security_opt', 'shm_size',
  'stdin_open', 'stop_grace_period', 'stop_signal', 'storage_opt', 'sysctls', 'tmpfs', 'tty', 'ulimits', 'use_api_socket', 'user', 'userns_mode',
  'uts', 'volumes', 'volumes_from', 'working_dir',
];

const VOLUME = ['name', 'driver', 'driver_opts', 'external', 'labels'];
const NETWORK = ['name', 'driver', 'driver_opts', 'ipam', 'external', 'internal', 'enable_ipv4', 'enable_ipv6', 'attachable', 'labels'];
const IPAM = ['driver', 'config', 'options'];
const IPAM_CONFIG = ['subnet', 'ip_range', 'gateway', 'aux_addresses'];
const FILE = ['name', 'file', 'content', 'environment', 'external', 'labels', 'template_driver', 'driver', 'driver_opts'];
const HEALTHCHECK = ['disable', 'interval', 'retries', 'test', 'timeout', 'start_period', 'start_interval'];

/** Which list a mapping's keys come from, by the mapping's key path. */
const SECTIONS: ReadonlyArray<readonly [RegExp, ReadonlySet<string>]> = [
  [/^$/, new Set(TOP_LEVEL)],
  [/^services\.[^.]+$/, new Set(SERVICE)],
  [/^services\.[^.]+\.healthcheck$/, new Set(HEALTHCHECK)],
  [/^volumes\.[^.]+$/, new Set(VOLUME)],
  [/^networks\.[^.]+$/, new Set(NETWORK)],
  [/^networks\.[^.]+\.ipam$/, new Set(IPAM)],
  [/^networks\.[^.]+\.ipam\.config\[\d+\]$/, new Set(IPAM_CONFIG)],
  [/^(configs|secrets)\.[^.]+$/, new Set(FILE)],
];

/** Whether `key` is a compose key of the mapping at `parent` (a key path, '' for the top level). */
export function isComposeKey(parent: string, key: string): boolean {
  return SECTIONS.some(([at, keys]) => at.test(parent) && keys.has(key));
}

/** The schema's wording for a refused key of a desired state or compose file (config/schema.ts UnknownKeyWording). */
export function composeKeyWording(parent: string, key: string): string | undefined {
  return isComposeKey(parent, key) ? 'berth does not support this compose key' : undefined;
}
