import { priorityOf } from '../cgroup/priority.js';
import type { LinuxDeviceCgroup, ResourceOptions } from '../cgroup/resources.js';
import path from 'node:path';
import { BerthError } from '../errors.js';
import type { ExtraHost, PortMapping } from '../network/types.js';

import { validateContainerPath, validateVolumeName } from './options-parse.js';
import { validateSysctls, type LogOptions, type SecurityOptions } from './options-security.js';
import type { IpcMode, PidMode } from './options-namespaces.js';

export {
  PROPAGATIONS, validateContainerPath, validateVolumeName, parseBytes, parseCpus, parseDevice, parseEnv, parseInteger, parseLabel, parseMemorySwap, parseRestart, parseSignal, parseTmpfs, parseUlimit, parseVolume,
} from './options-parse.js';
export {
  parseDeviceCgroupRule, parseGroupAdd, parseLogOptions, parseSecurityOpt, parseSysctl, validateSysctls, type LogOptions, type SecurityOptions,
} from './options-security.js';
export { parseDnsOption, parseExpose, parseIpcMode, parsePidMode, type IpcMode, type PidMode } from './options-namespaces.js';

/**
 * What `berth run` and compose pass to the runtime, with Docker's names and semantics. The parsers in
 * options-parse.ts and options-security.ts (re-exported here) turn command-line strings into these
 * values and fail with `usage` (malformed flag syntax) or `invalid` (well-formed but unacceptable value)
 * BerthErrors that name the offending input; validateRunOptions makes the cross-field checks.
 */

export type RestartPolicy =
  | { readonly name: 'no' }
  | { readonly name: 'always' }
  | { readonly name: 'unless-stopped' }
  /** `maxRetries` 0 or absent = retry forever, as Docker. */
  | { readonly name: 'on-failure'; readonly maxRetries?: number };

export interface VolumeMount {
  /** `bind`: an absolute host path. `volume`: the volume's name (its data lives in {@link volumeDataPath}). */
  readonly source: string;
  /** Absolute path inside the container. */
  readonly target: string;
  readonly readOnly: boolean;
  readonly kind: 'bind' | 'volume';
  /** Mount propagation (compose `bind.propagation`, `-v …:rslave`); absent = `rprivate`. */
  readonly propagation?: MountPropagation;
  /**
   * Create a missing bind source as a directory at create time, as docker does for `-v` and compose's
   * short syntax (and long syntax with `bind.create_host_path`); absent = a missing source is an error.
   */
  readonly createHostPath?: boolean;
}

export type MountPropagation = 'rprivate' | 'private' | 'rshared' | 'shared' | 'rslave' | 'slave';

/**
 * A file whose content travels with the options (compose `configs`/`secrets`): the engine writes it
 * under the container's own directory at create time and binds it read-only at `target`.
 */
export interface InlineFile {
  readonly target: string;
  /** The bytes, base64. */
  readonly content: string;
  /** Permission bits of the file (default 0444). */
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

export interface DeviceMapping {
  readonly hostPath: string;
  readonly containerPath: string;
  /** Non-empty subset of `rwm` (read, write, mknod), in that order. */
  readonly permissions: string;
}

export interface TmpfsMount {
  readonly target: string;
  /** mount options as given (`size=64m`, `mode=1777`, `exec` …); the spec builder adds the safe defaults. */
  readonly options: readonly string[];
}

/**
 * `none` = own namespace with only `lo` (`private` is its former name, still accepted); `host` = the
 * host's; `container:NAME|ID` joins another container's namespace (compose's `service:S` is resolved to
 * it by the compose stage); anything else names a bridge network (`bridge` = the default one), see
 * src/network/mode.ts.
 */
export type NetworkMode = 'host' | 'none' | 'private' | (string & {});

/** One network a container joins (compose `services.S.networks.N`). */
export interface NetworkEndpoint {
  /** The network's name on the host (AppNetwork.hostName). */
  readonly network: string;
  /** DNS names on that network besides the container's name (compose adds the service name). */
  readonly aliases: readonly string[];
  readonly ipv4Address?: string;
  /** compose's ipv6_address (a dual-stack network only). */
  readonly ipv6Address?: string;
}

export interface Ulimit {
  /** OCI name, e.g. `RLIMIT_NOFILE`. */
  readonly type: string;
  readonly soft: number;
  readonly hard: number;
}

/** Resource fields (memory, memoryReservation, memorySwap, cpus, cpuShares, pidsLimit) come from cgroup/resources.ts. */
export interface RunOptions extends ResourceOptions {
  readonly name: string;
  /** Replaces the image's Entrypoint and drops the image's Cmd (Docker's `--entrypoint`). `[]` = no entrypoint. */
  readonly entrypoint?: readonly string[];
  /** Replaces the image's Cmd when non-empty. */
  readonly cmd?: readonly string[];
  /** `K=V` entries, applied after the image's Env (later wins). */
  readonly env: readonly string[];
  readonly workdir?: string;
  /** `uid`, `uid:gid`, `name`, `name:group` (resolved against the image's /etc/passwd and /etc/group). */
  readonly user?: string;
  readonly volumes: readonly VolumeMount[];
  /**
   * Host directories every bind source must stay beneath, checked on the opened source at create and
   * at every start (src/runtime/bind-pin.ts): what the agent sets for a fleet deploy (its deploy
   * policy's bindPaths and the app's data directory). Absent = not confined (local `berth run`, `berth deploy`).
   */
  readonly confineBinds?: readonly string[];
  readonly devices: readonly DeviceMapping[];
  readonly tmpfs: readonly TmpfsMount[];
  readonly readOnly: boolean;
  readonly network: NetworkMode;
  /** `-p`, with ephemeral host ports resolved at create time (bridge networks only). */
  readonly ports?: readonly PortMapping[];
  /** `--dns`: resolv.conf's servers instead of the network's (bridge networks only). */
  readonly dns?: readonly string[];
  /** `--network-alias`: more DNS names on the network besides the container's name (user networks only). */
  readonly networkAliases?: readonly string[];
  /** `--ip`: a static IPv4 address on `network` (user networks with a subnet only). */
  readonly ipv4Address?: string;
  /** `--ip6`: a static IPv6 address on `network` (dual-stack user networks only). */
  readonly ipv6Address?: string;
  /**
   * compose's per-service `networks:`: every bridge network the container joins, in order, the first
   * one being `network` (whose entry's aliases/address replace networkAliases/ipv4Address). Absent =
   * just `network`.
   */
  readonly endpoints?: readonly NetworkEndpoint[];
  /** `--add-host NAME:IP` lines for /etc/hosts (bridge networks only). */
  readonly extraHosts?: readonly ExtraHost[];
  readonly hostname?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly restart: RestartPolicy;
  /** Signal name like `SIGTERM`. */
  readonly stopSignal?: string;
  /** Seconds. */
  readonly stopTimeout?: number;
  /** Extra rlimits (`--ulimit`); clamped to the host's hard limits by the spec builder. */
  readonly ulimits?: readonly Ulimit[];
  /** `--privileged`: every capability, every host device, no masked or read-only paths, /sys writable. */
  readonly privileged?: boolean;
  /** `--cap-add`/`--cap-drop`: `CAP_*` names or `ALL` (normalizeCapability). */
  readonly capAdd?: readonly string[];
  readonly capDrop?: readonly string[];
  readonly security?: SecurityOptions;
  /** `--group-add`: group names (looked up in the image's /etc/group) or numeric gids. */
  readonly groupAdd?: readonly string[];
  /** `--init`: a static init (tini) runs as PID 1 and reaps zombies; the engine finds the binary. */
  readonly init?: boolean;
  /** `--sysctl`: namespaced sysctls only (parseSysctl). */
  readonly sysctls?: Readonly<Record<string, string>>;
  /** `--shm-size` in bytes (default 64 MiB). */
  readonly shmSize?: number;
  /** `--device-cgroup-rule`s, allowed after the default device rules. */
  readonly deviceCgroupRules?: readonly LinuxDeviceCgroup[];
  /** `--oom-score-adj`, -1000…1000; replaces the priority class's value. */
  readonly oomScoreAdj?: number;
  /** `--log-driver`/`--log-opt`; absent = the capped log with the board's sizes. */
  readonly log?: LogOptions;
  /** `-t` / compose `tty`: the container's stdio is a pseudo-terminal its monitor owns (runtime/terminal.ts). */
  readonly tty?: boolean;
  /** `-i` / compose `stdin_open`: recorded only; berth attaches no stdin to deployed containers. */
  readonly stdinOpen?: boolean;
  /** The NIS domain name (OCI `domainname`). */
  readonly domainname?: string;
  /** `--expose` / compose `expose`: documentation of the ports the container listens on (`80/tcp`), as docker keeps it; nothing is published. */
  readonly expose?: readonly string[];
  /**
   * `--pid`: `host` the host's PID namespace; `container:X` another container's (compose `service:S`
   * resolved to it; the engine stores X's id). Absent = its own.
   */
  readonly pidMode?: PidMode;
  /**
   * `--ipc`: `host` shares the host's IPC namespace; `private`/`shareable` (the default) give the
   * container its own; `container:X` joins another container's (compose `service:S` resolved to it).
   */
  readonly ipcMode?: IpcMode;
  /** compose `mem_swappiness` (0…100): recorded; cgroup v2 has no per-cgroup swappiness (docker ignores it there too). */
  readonly memorySwappiness?: number;
  /** `--dns-search`: resolv.conf's search domains (bridge networks only). */
  readonly dnsSearch?: readonly string[];
  /** `--dns-option`: resolv.conf's `options` (bridge networks only). */
  readonly dnsOptions?: readonly string[];
  /** compose `configs`/`secrets`: files written by the engine and bound read-only. */
  readonly files?: readonly InlineFile[];
}

/**
 * The label holding a compose service's `container_name`: containers keep unique names
 * (`<service>.<hash>`, so old and new can coexist during an update), and the engine resolves this
 * label as a name too, so `berth logs NAME` finds the service's current container.
 */
export const CONTAINER_NAME_LABEL = 'berth.container-name';

/** Options for a plain `berth run NAME IMAGE`: no mounts, no devices, private network, restart `no`. */
export function defaultRunOptions(name: string): RunOptions {
  return { name: validateContainerName(name), env: [], volumes: [], devices: [], tmpfs: [], readOnly: false, network: 'private', labels: {}, restart: { name: 'no' } };
}

const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export function validateContainerName(name: string): string {
  if (!CONTAINER_NAME.test(name)) {
    throw new BerthError('invalid', `invalid container name "${name}": use 1–128 characters from [a-zA-Z0-9_.-], starting with a letter or digit`);
  }
  return name;
}

/** Where a named volume's data lives under the state root: `<root>/volumes/<name>/_data`. The caller creates it. */
export function volumeDataPath(root: string, name: string): string {
  return path.join(root, 'volumes', validateVolumeName(name), '_data');
}

/** Docker's minimum `--memory`. */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

/**
 * Cross-field checks Docker makes at create time: memory at least 6 MiB, swap total not below memory and
 * only with a memory limit, reservation not above the limit, shares in 2…262144, stop timeout ≥ 0.
 */
export function validateRunOptions(o: RunOptions): RunOptions {
  validateContainerName(o.name);
  priorityOf(o.labels);
  if (o.memory !== undefined && o.memory < MIN_MEMORY_BYTES) throw new BerthError('invalid', `--memory: minimum memory limit is 6 MiB (got ${o.memory} bytes)`);
  if (o.memorySwap !== undefined && o.memorySwap !== -1) {
    if (o.memorySwap < 0) throw new BerthError('invalid', `--memory-swap: ${o.memorySwap} is negative (use -1 for unlimited swap)`);
    if (o.memory === undefined) throw new BerthError('usage', '--memory-swap needs --memory: it is the total of memory and swap');
    if (o.memorySwap < o.memory) throw new BerthError('invalid', `--memory-swap (${o.memorySwap}) must be at least --memory (${o.memory}): it is memory plus swap`);
  }
  if (o.memoryReservation !== undefined && o.memory !== undefined && o.memoryReservation > o.memory) {
    throw new BerthError('invalid', `--memory-reservation (${o.memoryReservation}) must not exceed --memory (${o.memory})`);
  }
  if (o.cpus !== undefined && !(o.cpus >= 0.01)) throw new BerthError('invalid', `--cpus: ${o.cpus} is out of range: use at least 0.01`);
  if (o.cpuShares !== undefined && (!Number.isInteger(o.cpuShares) || o.cpuShares < 2 || o.cpuShares > 262144)) {
    throw new BerthError('invalid', `--cpu-shares: ${o.cpuShares} is out of range 2…262144`);
  }
  if (o.pidsLimit !== undefined && !Number.isInteger(o.pidsLimit)) throw new BerthError('invalid', `--pids-limit: ${o.pidsLimit} is not an integer`);
  if (o.stopTimeout !== undefined && !(o.stopTimeout >= 0)) throw new BerthError('invalid', `--stop-timeout: ${o.stopTimeout} is negative`);
  if (o.hostname !== undefined && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/.test(o.hostname)) throw new BerthError('invalid', `--hostname: invalid hostname "${o.hostname}"`);
  if (o.shmSize !== undefined && !(Number.isSafeInteger(o.shmSize) && o.shmSize > 0)) throw new BerthError('invalid', `--shm-size: ${o.shmSize} must be a positive number of bytes`);
  if (o.oomScoreAdj !== undefined && !(Number.isInteger(o.oomScoreAdj) && o.oomScoreAdj >= -1000 && o.oomScoreAdj <= 1000)) {
    throw new BerthError('invalid', `--oom-score-adj: ${o.oomScoreAdj} is out of range -1000…1000`);
  }
  validateSysctls(o.sysctls, o.network);
  const targets = new Set<string>();
  for (const t of [...o.volumes.map((v) => v.target), ...o.tmpfs.map((t) => t.target), ...(o.files ?? []).map((f) => f.target)]) {
    if (targets.has(t)) throw new BerthError('invalid', `duplicate mount point ${t}`);
    targets.add(t);
  }
  return o;
}
