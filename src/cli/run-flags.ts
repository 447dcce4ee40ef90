import crypto from 'node:crypto';
import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import { formatIPv4, parseIPv4 } from '../network/ipv4.js';
import { parseAddHost, parsePublish, validateNetworkAlias } from '../network/ports.js';
import {
  parseBytes, parseCpus, parseDevice, parseEnv, parseInteger, parseLabel, parseMemorySwap, parseRestart, parseSignal, parseTmpfs,
  parseUlimit, parseVolume, validateContainerName, type NetworkMode, type RunOptions,
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
    .option('--network <mode>', 'none (own namespace, loopback only; alias: private) | host | bridge | a network name', 'private')
    .option('-p, --publish <[IP:][HOST:]PORT[/proto]>', "publish a container port on the host (bridge networks; repeatable)", collect, [])
    .option('--network-alias <name>', 'another DNS name for the container on a user network (repeatable)', collect, [])
    .option('--dns <ip>', 'DNS server for the container (repeatable)', collect, [])
    .option('--add-host <name:ip>', 'add a line to /etc/hosts (repeatable)', collect, [])
    .option('--read-only', 'mount the root filesystem read-only')
    .option('-u, --user <user[:group]>', 'user to run as')
    .option('-w, --workdir <dir>', 'working directory')
    .option('--entrypoint <cmd>', "override the image's entrypoint")
    .option('--hostname <name>', 'container hostname')
    .option('--stop-signal <signal>', 'signal berth stop sends first (default SIGTERM)')
    .option('--stop-timeout <seconds>', 'seconds berth stop waits before SIGKILL (default 10)')
    .option('--ulimit <type=soft[:hard]>', 'rlimit (repeatable)', collect, [])
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
  publish: string[];
  networkAlias: string[];
  dns: string[];
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
}

/** Turns parsed flags into RunOptions; every bad value is a clear usage or invalid error. */
export function runOptionsFrom(flags: RunFlags, cmd: readonly string[], env: NodeJS.ProcessEnv): RunOptions {
  if (flags.network.startsWith('container:')) throw new BerthError('usage', '--network container:NAME is not supported yet');
  const name = flags.name ?? `berth_${crypto.randomBytes(4).toString('hex')}`;
  return {
    name: validateContainerName(name),
    env: flags.env.map((e) => parseEnv(e, env)).filter((e): e is string => e !== undefined),
    volumes: flags.volume.map(parseVolume),
    devices: flags.device.map(parseDevice),
    tmpfs: flags.tmpfs.map(parseTmpfs),
    labels: Object.fromEntries(flags.label.map(parseLabel)),
    readOnly: flags.readOnly === true,
    network: flags.network as NetworkMode,
    ...(flags.publish.length > 0 && { ports: flags.publish.map(parsePublish) }),
    ...(flags.networkAlias.length > 0 && { networkAliases: flags.networkAlias.map(validateNetworkAlias) }),
    ...(flags.dns.length > 0 && { dns: flags.dns.map((d) => formatIPv4(parseIPv4(d, '--dns'))) }),
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
  };
}
