import crypto from 'node:crypto';
import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import { readEnvFile } from '../compose/env-file.js';
import { lookupIn } from '../compose/interpolate.js';
import { formatIPv4, parseIPv4 } from '../network/ipv4.js';
import { formatIPv6, parseIPv6 } from '../network/ipv6.js';
import { parseAddHost, parsePublish, validateNetworkAlias } from '../network/ports.js';
import { normalizeCapability } from '../runtime/capabilities.js';
import {
  parseBytes, parseCpus, parseDevice, parseDeviceCgroupRule, parseDnsOption, parseEnv, parseExpose, parseGroupAdd, parseInteger, parseIpcMode, parseLabel, parseLogOptions, parseMemorySwap,
  parsePidMode, parseRestart, parseSecurityOpt, parseSignal, parseSysctl, parseTmpfs, parseUlimit, parseVolume, validateContainerName,
  type NetworkMode, type RunOptions, type SecurityOptions,
} from '../runtime/options.js';

const collect = (v: string, acc: string[]): string[] => [...acc, v];

/** The docker-compatible flags shared by `berth run` and `berth create`. */
export function addRunFlags(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'container name (default: generated)')
    .option('-e, --env <K=V>', 'set an environment variable (repeatable; K alone takes it from this shell)', collect, [])
    .option('-v, --volume <SRC:DST[:ro]>', 'bind mount (SRC absolute) or named volume (repeatable)', collect, [])
    .option('--device <PATH[:CPATH[:rwm]]>', 'pass a host device, e.g. /dev/i2c-1 (repeatable)', collect, [])
    .option('--tmpfs <DST[:opts]>', 'mount a tmpfs (repeatable)', collect, [])
    .option('-l, --label <K=V>', 'set a label (repeatable)', collect, [])
    .option('-m, --memory <bytes>', 'memory limit, e.g. 64m')
    .option('--memory-reservation <bytes>', 'memory soft guarantee (memory.low)')
    .option('--memory-swap <bytes>', 'memory plus swap; -1 for unlimited swap (default: no swap)')
    .option('--cpus <n>', 'CPU quota in cores, e.g. 0.5')
    .option('--cpu-shares <n>', 'relative CPU weight (1024 = normal)')
    .option('--pids-limit <n>', 'maximum number of processes (-1: unlimited)')
    .option('--restart <policy>', 'no | on-failure[:N] | always | unless-stopped', 'no')
    .option('--network <mode>', 'bridge (the default network) | a network name | none (own namespace, loopback only; alias: private) | host | container:NAME|ID', 'bridge')
    .option('--ip <address>', 'static IPv4 address on the --network (a user network)')
    .option('--ip6 <address>', 'static IPv6 address on the --network (a user network made with --ipv6)')
    .option('-p, --publish <[IP:][HOST:]PORT[/proto]>', "publish a container port on the host (bridge networks; repeatable)", collect, [])
    .option('--network-alias <name>', 'another DNS name for the container on a user network (repeatable)', collect, [])
    .option('--dns <ip>', 'DNS server for the container (repeatable)', collect, [])
    .option('--dns-search <domain>', "a search domain for the container's resolv.conf (repeatable; replaces the host's)", collect, [])
    .option('--dns-option <opt>', "a resolv.conf option, e.g. ndots:2 (repeatable; replaces the host's)", collect, [])
    .option('--expose <port[-end][/proto]>', 'document a port the container listens on (published by nothing; repeatable)', collect, [])
    .option('--add-host <name:ip>', 'add a line to /etc/hosts (repeatable)', collect, [])
    .option('--read-only', 'mount the root filesystem read-only')
    .option('-u, --user <user[:group]>', 'user to run as')
    .option('-w, --workdir <dir>', 'working directory')
    .option('--entrypoint <cmd>', "override the image's entrypoint")
    .option('--hostname <name>', 'container hostname')
    .option('--stop-signal <signal>', 'signal berth stop sends first (default SIGTERM)')
    .option('--stop-timeout <seconds>', 'seconds berth stop waits before SIGKILL (default 10)')
    .option('--ulimit <type=soft[:hard]>', 'rlimit (repeatable)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file, compose .env syntax (repeatable; -e wins)', collect, [])
    .option('--privileged', 'all capabilities, all host devices, /sys writable, no masked paths')
    .option('--cap-add <cap>', 'add a capability, e.g. NET_ADMIN, or ALL (repeatable)', collect, [])
    .option('--cap-drop <cap>', 'drop a capability, or ALL (repeatable)', collect, [])
    .option('--security-opt <opt>', 'no-new-privileges[:true|false], systempaths=unconfined; label=disable, apparmor=unconfined, seccomp=unconfined (no-ops) (repeatable)', collect, [])
    .option('--group-add <group>', 'an additional group: name from the image or gid (repeatable)', collect, [])
    .option('--pid <mode>', "host (the host's PID namespace) | container:NAME|ID (another container's)")
    .option('--ipc <mode>', "private | shareable (its own, the default) | host | container:NAME|ID (another container's)")
    .option('--init', 'run a static init (tini) as PID 1, which reaps zombies and forwards signals')
    .option('--sysctl <key=value>', 'a namespaced sysctl: net.*, kernel.msg*/sem/shm*, fs.mqueue.* (repeatable)', collect, [])
    .option('--shm-size <bytes>', 'size of /dev/shm (default 64m)')
    .option('--device-cgroup-rule <rule>', "allow devices in the cgroup, e.g. 'c 189:* rwm' (repeatable)", collect, [])
    .option('--oom-score-adj <n>', 'OOM killer preference, -1000…1000 (default: from berth.priority)')
    .option('--cpuset-cpus <list>', 'CPUs the container may use, e.g. 0-1,3')
    .option('--log-driver <driver>', 'json-file | local (berth\'s capped log) | none')
    .option('--log-opt <key=value>', 'max-size=10m, max-file=3 (repeatable)', collect, [])
    .option('-t, --tty', 'give the container a pseudo-terminal (its monitor keeps it; berth attach joins it)')
    .option('-i, --interactive', 'with -t: what is typed in this terminal goes to the container')
    .option('--platform <os/arch[/variant]>', 'platform to pull if the image is missing');
}

export interface RunFlags {
  name?: string;
  env: string[];
  volume: string[];
  device: string[];
  tmpfs: string[];
  label: string[];
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  restart: string;
  network: string;
  ip?: string;
  ip6?: string;
  publish: string[];
  networkAlias: string[];
  dns: string[];
  dnsSearch: string[];
  dnsOption: string[];
  expose: string[];
  addHost: string[];
  readOnly?: boolean;
  user?: string;
  workdir?: string;
  entrypoint?: string;
  hostname?: string;
  stopSignal?: string;
  stopTimeout?: string;
  ulimit: string[];
  platform?: string;
  envFile: string[];
  privileged?: boolean;
  capAdd: string[];
  capDrop: string[];
  securityOpt: string[];
  groupAdd: string[];
  pid?: string;
  ipc?: string;
  init?: boolean;
  sysctl: string[];
  shmSize?: string;
  deviceCgroupRule: string[];
  oomScoreAdj?: string;
  cpusetCpus?: string;
  logDriver?: string;
  logOpt: string[];
  tty?: boolean;
  interactive?: boolean;
}

/** Turns parsed flags into RunOptions; every bad value is a clear usage or invalid error. */
export function runOptionsFrom(flags: RunFlags, cmd: readonly string[], env: NodeJS.ProcessEnv): RunOptions {
  const name = flags.name ?? `berth_${crypto.randomBytes(4).toString('hex')}`;
  return {
    name: validateContainerName(name),
    // docker's order: --env-file entries first, then -e (a later key replaces an earlier one in the spec).
    env: envEntries(flags.envFile, flags.env, env),
    volumes: flags.volume.map(parseVolume),
    devices: flags.device.map(parseDevice),
    tmpfs: flags.tmpfs.map((t) => parseTmpfs(t)),
    labels: Object.fromEntries(flags.label.map(parseLabel)),
    readOnly: flags.readOnly === true,
    network: flags.network as NetworkMode,
    ...(flags.publish.length > 0 && { ports: flags.publish.map(parsePublish) }),
    ...(flags.ip !== undefined && { ipv4Address: formatIPv4(parseIPv4(flags.ip, '--ip')) }),
    ...(flags.ip6 !== undefined && { ipv6Address: formatIPv6(parseIPv6(flags.ip6, '--ip6')) }),
    ...(flags.networkAlias.length > 0 && { networkAliases: flags.networkAlias.map((a) => validateNetworkAlias(a)) }),
    ...(flags.dns.length > 0 && { dns: flags.dns.map((d) => formatIPv4(parseIPv4(d, '--dns'))) }),
    ...(flags.dnsSearch.length > 0 && { dnsSearch: flags.dnsSearch.map((d) => validateNetworkAlias(d, '--dns-search')) }),
    ...(flags.dnsOption.length > 0 && { dnsOptions: flags.dnsOption.map((o) => parseDnsOption(o)) }),
    ...(flags.expose.length > 0 && { expose: flags.expose.map((e) => parseExpose(e)) }),
    ...(flags.addHost.length > 0 && { extraHosts: flags.addHost.map(parseAddHost) }),
    restart: parseRestart(flags.restart),
    ...(cmd.length > 0 && { cmd }),
    ...(flags.entrypoint !== undefined && { entrypoint: flags.entrypoint === '' ? [] : [flags.entrypoint] }),
    ...(flags.user !== undefined && { user: flags.user }),
    ...(flags.workdir !== undefined && { workdir: flags.workdir }),
    ...(flags.hostname !== undefined && { hostname: flags.hostname }),
    ...(flags.memory !== undefined && { memory: parseBytes(flags.memory, '--memory') }),
    ...(flags.memoryReservation !== undefined && { memoryReservation: parseBytes(flags.memoryReservation, '--memory-reservation') }),
    ...(flags.memorySwap !== undefined && { memorySwap: parseMemorySwap(flags.memorySwap) }),
    ...(flags.cpus !== undefined && { cpus: parseCpus(flags.cpus) }),
    ...(flags.cpuShares !== undefined && { cpuShares: parseInteger(flags.cpuShares, '--cpu-shares', { min: 2, max: 262144 }) }),
    ...(flags.pidsLimit !== undefined && { pidsLimit: parseInteger(flags.pidsLimit, '--pids-limit', { min: -1 }) }),
    ...(flags.stopSignal !== undefined && { stopSignal: parseSignal(flags.stopSignal) }),
    ...(flags.stopTimeout !== undefined && { stopTimeout: parseInteger(flags.stopTimeout, '--stop-timeout', { min: 0 }) }),
    ...(flags.ulimit.length > 0 && { ulimits: flags.ulimit.map(parseUlimit) }),
    ...securityOptionsFrom(flags),
  };
}

/** The confinement, kernel and logging flags (options-security.ts has the parsers and Docker's rules). */
function securityOptionsFrom(flags: RunFlags): Partial<RunOptions> {
  const logging = flags.logDriver !== undefined || flags.logOpt.length > 0;
  return {
    ...(flags.privileged && { privileged: true }),
    ...(flags.capAdd.length > 0 && { capAdd: flags.capAdd.map((c) => normalizeCapability(c, '--cap-add')) }),
    ...(flags.capDrop.length > 0 && { capDrop: flags.capDrop.map((c) => normalizeCapability(c, '--cap-drop')) }),
    ...(flags.securityOpt.length > 0 && { security: flags.securityOpt.reduce<SecurityOptions>((acc, o) => parseSecurityOpt(o, acc), {}) }),
    ...(flags.groupAdd.length > 0 && { groupAdd: flags.groupAdd.map((g) => parseGroupAdd(g)) }),
    ...(flags.pid !== undefined && { pidMode: parsePidMode(flags.pid) }),
    ...(flags.ipc !== undefined && { ipcMode: parseIpcMode(flags.ipc) }),
    ...(flags.init && { init: true }),
    ...(flags.sysctl.length > 0 && { sysctls: Object.fromEntries(flags.sysctl.map((x) => parseSysctl(x))) }),
    ...(flags.shmSize !== undefined && { shmSize: parseBytes(flags.shmSize, '--shm-size') }),
    ...(flags.deviceCgroupRule.length > 0 && { deviceCgroupRules: flags.deviceCgroupRule.map((r) => parseDeviceCgroupRule(r)) }),
    ...(flags.oomScoreAdj !== undefined && { oomScoreAdj: parseInteger(flags.oomScoreAdj, '--oom-score-adj', { min: -1000, max: 1000 }) }),
    ...(flags.cpusetCpus !== undefined && { cpusetCpus: flags.cpusetCpus }),
    ...(logging && { log: parseLogOptions(flags.logDriver, flags.logOpt) }),
    ...(flags.tty && { tty: true }),
    ...(flags.interactive && { stdinOpen: true }),
  };
}

/**
 * docker's `--env-file` and `-e` flags (run, create, exec) as `K=V` entries: the files first, then -e (a
 * later key replaces an earlier one in the spec); a bare `-e KEY` takes its value from `env`.
 */
export function envEntries(envFiles: readonly string[], envFlags: readonly string[], env: NodeJS.ProcessEnv): string[] {
  return [...envFileEntries(envFiles, env), ...envFlags.map((e) => parseEnv(e, env)).filter((e): e is string => e !== undefined)];
}

/** `--env-file`s in order, read with compose's .env syntax; a bare KEY takes its value from `env`. */
function envFileEntries(files: readonly string[], env: NodeJS.ProcessEnv): string[] {
  return files.flatMap((file) => [...readEnvFile(file, { lookup: lookupIn(env), source: `--env-file ${file}` })].map(([k, v]) => `${k}=${v}`));
}
