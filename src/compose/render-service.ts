import type { LinuxDeviceCgroup } from '../cgroup/resources.js';
import { formatDuration } from '../duration.js';
import type { PortMapping } from '../network/types.js';
import { CONTAINER_NAME_LABEL, type RestartPolicy, type RunOptions, type SecurityOptions, type VolumeMount } from '../runtime/options.js';
import { REVISION_LABEL, SERVICE_LABEL, SPEC_LABEL } from './labels.js';
import type { App, AppService } from './model.js';
import { balenaFeatures } from './service-balena.js';
import { pullPolicyText } from './service-pull.js';

/**
 * One service of the app model written back in compose's spelling, normalized as `docker compose config`
 * prints it (see render.ts): argv lists, mappings for environment, labels and sysctls, sizes in bytes,
 * durations in compose's spelling, ports and non-default mounts in the long syntax, depends_on in the
 * long form, networks by their key with the aliases berth adds. Only what differs from berth's
 * defaults is shown, except restart and read_only. The mounts and variables balena's feature labels
 * add are left to the labels that ask for them, so the output is itself a file berth accepts and
 * normalizes to the same document.
 */

const restart = (r: RestartPolicy): string => (r.name === 'on-failure' && r.maxRetries !== undefined ? `on-failure:${r.maxRetries}` : r.name);

const OWN_LABELS = new Set([SERVICE_LABEL, SPEC_LABEL, REVISION_LABEL, CONTAINER_NAME_LABEL]);

const some = <T>(v: readonly T[] | undefined): v is readonly T[] => v !== undefined && v.length > 0;

function environment(env: readonly string[]): Record<string, string> {
  return Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

/** Short syntax where it says everything (`src:dst[:ro][,rslave]`, a bind created when missing), else the long syntax. */
function volume(v: VolumeMount, app: App): string | Record<string, unknown> {
  const opts = [...(v.readOnly ? ['ro'] : []), ...(v.propagation !== undefined ? [v.propagation] : [])];
  // A named volume is written by its key under top-level volumes:, which is how the file names it.
  const source = v.kind === 'volume' ? ([...app.volumes].find(([, d]) => d.hostName === v.source)?.[0] ?? v.source) : v.source;
  if (v.kind === 'volume' || v.createHostPath === true) return `${source}:${v.target}${opts.length > 0 ? `:${opts.join(',')}` : ''}`;
  return { type: 'bind', source: v.source, target: v.target, read_only: v.readOnly, bind: { create_host_path: false, ...(v.propagation !== undefined && { propagation: v.propagation }) } };
}

/** compose's long port syntax, as `docker compose config` prints it. */
function port(p: PortMapping): Record<string, unknown> {
  const range = (start: number, count: number): string | number => (count === 1 ? start : `${start}-${start + count - 1}`);
  const published = p.hostPortEnd !== undefined ? `${p.hostPort}-${p.hostPortEnd}` : p.hostPort === 0 ? undefined : String(range(p.hostPort, p.count));
  return { target: range(p.containerPort, p.count), ...(published !== undefined && { published }), ...(p.hostIp !== '' && { host_ip: p.hostIp }), protocol: p.protocol };
}

function securityOpt(s: SecurityOptions): string[] {
  return [...(s.noNewPrivileges !== undefined ? [`no-new-privileges:${s.noNewPrivileges}`] : []), ...(s.unconfinedSystemPaths ? ['systempaths=unconfined'] : [])];
}

const cgroupRule = (r: LinuxDeviceCgroup): string => `${r.type ?? 'a'} ${r.major ?? '*'}:${r.minor ?? '*'} ${r.access}`;

/**
 * `configs:` and `secrets:` in the long syntax, every default spelled out. The service's files are its
 * configs then its secrets, in the order the file lists them (service-volumes.ts), so the names come
 * from the spec as written and everything else from the files as they will be written.
 */
function fileRefs(s: AppService, app: App): Record<string, unknown> {
  const spec = app.source.services[s.name];
  const files = s.run.files ?? [];
  const refs = (list: readonly (string | { readonly source: string })[] | undefined, from: number): Array<Record<string, unknown>> =>
    (list ?? []).map((r, i) => {
      const f = files[from + i]!;
      return {
        source: typeof r === 'string' ? r : r.source, target: f.target, mode: `0${(f.mode ?? 0o444).toString(8)}`,
        ...(f.uid !== undefined && { uid: String(f.uid) }), ...(f.gid !== undefined && { gid: String(f.gid) }),
      };
    });
  const configs = refs(spec?.configs, 0);
  const secrets = refs(spec?.secrets, configs.length);
  return { ...(configs.length > 0 && { configs }), ...(secrets.length > 0 && { secrets }) };
}

/** Network keys by host name, to show `networks:` by the keys the file used. */
function networks(o: RunOptions, app: App): Record<string, unknown> | undefined {
  if (o.endpoints === undefined) return undefined;
  const keyOf = new Map([...app.networks.values()].map((n) => [n.hostName, n.name]));
  // Only the default network, with only the aliases every service gets there: what a file without
  // networks: means, so it is shown as compose shows it (nothing).
  const implicit = [o.labels[SERVICE_LABEL], o.labels[CONTAINER_NAME_LABEL]].filter((a) => a !== undefined);
  const [only] = o.endpoints;
  if (o.endpoints.length === 1 && keyOf.get(only!.network) === 'default' && only!.ipv4Address === undefined && only!.ipv6Address === undefined && only!.aliases.every((a) => implicit.includes(a))) return undefined;
  return Object.fromEntries(o.endpoints.map((e) => [keyOf.get(e.network) ?? e.network, { aliases: [...e.aliases], ...(e.ipv4Address !== undefined && { ipv4_address: e.ipv4Address }), ...(e.ipv6Address !== undefined && { ipv6_address: e.ipv6Address }) }]));
}

export function renderService(s: AppService, app: App): Record<string, unknown> {
  const labels = Object.fromEntries(Object.entries(s.run.labels).filter(([k]) => !OWN_LABELS.has(k)));
  // What the labels add (balenaFeatures puts its mounts last and its variables first) is theirs to show.
  const features = balenaFeatures(s.name, labels);
  const o: RunOptions = { ...s.run, env: s.run.env.slice(features.env.length), volumes: s.run.volumes.filter((v) => !features.volumes.includes(v)) };
  const h = s.healthcheck;
  const containerName = o.labels[CONTAINER_NAME_LABEL];
  return {
    image: s.image,
    ...(containerName !== undefined && { container_name: containerName }),
    ...(s.platform !== undefined && { platform: s.platform }),
    ...(s.pullPolicy !== undefined && { pull_policy: pullPolicyText(s.pullPolicy) }),
    ...(o.entrypoint && { entrypoint: [...o.entrypoint] }),
    ...(o.cmd && { command: [...o.cmd] }),
    ...(o.env.length > 0 && { environment: environment(o.env) }),
    ...(s.dependsOn.size > 0 && { depends_on: Object.fromEntries([...s.dependsOn].map(([d, x]) => [d, { condition: x.condition, restart: x.restart, required: x.required }])) }),
    ...(o.memory !== undefined && { mem_limit: o.memory }),
    ...(o.memoryReservation !== undefined && { mem_reservation: o.memoryReservation }),
    ...(o.memorySwap !== undefined && { memswap_limit: o.memorySwap }),
    ...(o.memorySwappiness !== undefined && { mem_swappiness: o.memorySwappiness }),
    ...(o.cpus !== undefined && { cpus: o.cpus }),
    ...(o.cpuShares !== undefined && { cpu_shares: o.cpuShares }),
    ...(o.cpusetCpus !== undefined && { cpuset: o.cpusetCpus }),
    ...(o.pidsLimit !== undefined && { pids_limit: o.pidsLimit }),
    ...(o.blkioWeight !== undefined && { blkio_config: { weight: o.blkioWeight } }),
    ...(o.shmSize !== undefined && { shm_size: o.shmSize }),
    restart: restart(o.restart),
    ...(o.volumes.length > 0 && { volumes: o.volumes.map((v) => volume(v, app)) }),
    ...(o.tmpfs.length > 0 && { tmpfs: o.tmpfs.map((t) => `${t.target}${t.options.length > 0 ? `:${t.options.join(',')}` : ''}`) }),
    ...fileRefs(s, app),
    ...(o.devices.length > 0 && { devices: o.devices.map((d) => `${d.hostPath}:${d.containerPath}:${d.permissions}`) }),
    ...(some(o.deviceCgroupRules) && { device_cgroup_rules: o.deviceCgroupRules.map(cgroupRule) }),
    // `private` (its own namespace) is berth's default and compose has no word for it.
    ...(o.endpoints === undefined && o.network !== 'private' && { network_mode: o.network }),
    ...(networks(o, app) !== undefined && { networks: networks(o, app) }),
    ...(some(o.ports) && { ports: o.ports.map(port) }),
    ...(some(o.expose) && { expose: [...o.expose] }),
    ...(o.hostname !== undefined && { hostname: o.hostname }),
    ...(o.domainname !== undefined && { domainname: o.domainname }),
    ...(some(o.dns) && { dns: [...o.dns] }),
    ...(some(o.dnsSearch) && { dns_search: [...o.dnsSearch] }),
    ...(some(o.dnsOptions) && { dns_opt: [...o.dnsOptions] }),
    ...(some(o.extraHosts) && { extra_hosts: o.extraHosts.map((x) => `${x.name}:${x.ip}`) }),
    ...(o.privileged && { privileged: true }),
    ...(some(o.capAdd) && { cap_add: [...o.capAdd] }),
    ...(some(o.capDrop) && { cap_drop: [...o.capDrop] }),
    ...(o.security !== undefined && securityOpt(o.security).length > 0 && { security_opt: securityOpt(o.security) }),
    ...(some(o.groupAdd) && { group_add: [...o.groupAdd] }),
    ...(o.sysctls !== undefined && { sysctls: { ...o.sysctls } }),
    ...(some(o.ulimits) && { ulimits: Object.fromEntries(o.ulimits.map((u) => [u.type.replace(/^RLIMIT_/, '').toLowerCase(), { soft: u.soft, hard: u.hard }])) }),
    ...(o.pidMode !== undefined && { pid: o.pidMode }),
    ...(o.ipcMode !== undefined && { ipc: o.ipcMode }),
    ...(o.oomScoreAdj !== undefined && { oom_score_adj: o.oomScoreAdj }),
    ...(o.init && { init: true }),
    ...(o.tty && { tty: true }),
    ...(o.stdinOpen && { stdin_open: true }),
    read_only: o.readOnly,
    ...(o.user !== undefined && { user: o.user }),
    ...(o.workdir !== undefined && { working_dir: o.workdir }),
    ...(o.stopSignal !== undefined && { stop_signal: o.stopSignal }),
    ...(o.stopTimeout !== undefined && { stop_grace_period: formatDuration(o.stopTimeout * 1000) }),
    ...(o.log !== undefined && {
      logging: {
        driver: o.log.driver,
        ...((o.log.maxSize !== undefined || o.log.maxFile !== undefined) && { options: { ...(o.log.maxSize !== undefined && { 'max-size': String(o.log.maxSize) }), ...(o.log.maxFile !== undefined && { 'max-file': String(o.log.maxFile) }) } }),
      },
    }),
    ...(h && {
      healthcheck: {
        test: ['CMD', ...h.argv], interval: formatDuration(h.intervalMs), timeout: formatDuration(h.timeoutMs), retries: h.retries, start_period: formatDuration(h.startPeriodMs),
      },
    }),
    ...(Object.keys(labels).length > 0 && { labels }),
  };
}
