import path from 'node:path';
import { priorityOf } from '../cgroup/priority.js';
import { cgroupV2Files, toLinuxResources } from '../cgroup/resources.js';
import type { BoardInfo } from '../board/index.js';
import type { ContainerRecord } from './records.js';
import type { RuntimeInfo } from './engine-api.js';
import { readExit } from './monitor.js';
import type { SecurityOptions } from './options-security.js';
import type { SecurityView } from './inspect-security.js';
import { SHM_SIZE_BYTES } from './spec/mounts.js';
import { containerNetworkSettings } from '../network/inspect.js';
import type { Attachment } from '../network/netavark.js';

/** What the engine knows of a container beyond its record, for inspect. */
export interface InspectContext {
  readonly board: BoardInfo;
  /** The runtime the container was created with. */
  readonly runtime: RuntimeInfo;
  readonly stateDir: string;
  readonly pid: number | undefined;
  /** Frozen by the pressure governor (cgroup v2 freezer): docker's "paused". */
  readonly paused: boolean;
  /** The networks it is attached to, with its addresses. */
  readonly attachments: readonly Attachment[];
  /** The confinement in force, read from its spec (inspect-security.ts). */
  readonly security?: SecurityView;
}

const iso = (ms: number | undefined): string => (ms === undefined ? '0001-01-01T00:00:00Z' : new Date(ms).toISOString());

/** docker-inspect-shaped view of a container, with the limits and whether this host enforces them. */
export function inspectContainer(c: ContainerRecord, ctx: InspectContext): Record<string, unknown> {
  const { board, runtime, paused } = ctx;
  const exit = readExit(ctx.stateDir);
  const running = c.state === 'running';
  const o = c.options;
  const resources = toLinuxResources(o, board.containerDefaults, priorityOf(o.labels));
  return {
    Id: c.id,
    Name: c.name,
    Image: c.image,
    ImageDigest: c.imageDigest,
    Created: iso(c.createdAt),
    State: {
      Status: paused ? 'paused' : c.state,
      Running: running,
      Paused: paused,
      Pid: running ? ctx.pid ?? 0 : 0,
      ExitCode: c.exitCode ?? 0,
      OOMKilled: c.oomKilled,
      OOMDetection: exit?.oomSource ?? (runtime.cgroupsEnforced ? 'memory.events' : 'none'),
      StartedAt: iso(c.startedAt),
      FinishedAt: iso(c.finishedAt),
      ...(c.state === 'dead' && { Error: 'the monitor ended before recording an exit status' }),
    },
    RestartCount: c.restartCount,
    Runtime: c.runtime,
    Config: { Tty: o.tty === true, Cmd: o.cmd ?? null, Entrypoint: o.entrypoint ?? null, Env: o.env, WorkingDir: o.workdir ?? '', User: o.user ?? '', Labels: o.labels, Hostname: o.hostname ?? c.id.slice(0, 12) },
    HostConfig: {
      Memory: o.memory ?? 0, MemoryReservation: o.memoryReservation ?? 0, MemorySwap: o.memorySwap ?? 0, NanoCpus: Math.round((o.cpus ?? 0) * 1e9),
      CpuShares: o.cpuShares ?? 0, PidsLimit: o.pidsLimit ?? 0, ReadonlyRootfs: o.readOnly, NetworkMode: o.network,
      RestartPolicy: o.restart, Devices: o.devices, Binds: o.volumes, ...(o.dns && { Dns: o.dns }), ...(o.extraHosts && { ExtraHosts: o.extraHosts.map((h) => `${h.name}:${h.ip}`) }),
      Privileged: o.privileged === true, CapAdd: o.capAdd ?? null, CapDrop: o.capDrop ?? null, SecurityOpt: securityOpt(o.security),
      GroupAdd: o.groupAdd ?? null, Init: o.init === true, Sysctls: o.sysctls ?? {}, ShmSize: o.shmSize ?? SHM_SIZE_BYTES,
      DeviceCgroupRules: o.deviceCgroupRules ?? null, OomScoreAdj: o.oomScoreAdj ?? 0, CpusetCpus: o.cpusetCpus ?? '',
      LogConfig: { Type: o.log?.driver ?? 'json-file', Config: { ...(o.log?.maxSize !== undefined && { 'max-size': String(o.log.maxSize) }), ...(o.log?.maxFile !== undefined && { 'max-file': String(o.log.maxFile) }) } },
    },
    NetworkSettings: containerNetworkSettings(ctx.attachments, o.ports ?? []),
    ...(ctx.security && { Security: ctx.security }),
    Limits: {
      Enforced: runtime.cgroupsEnforced,
      Priority: priorityOf(o.labels),
      Note: runtime.limitsNote,
      CgroupFiles: cgroupV2Files(resources),
    },
    LogPath: o.log?.driver === 'none' ? '' : path.join(ctx.stateDir, 'container.log'),
  };
}

/** --security-opt as Docker's inspect lists it, from the parsed form. */
function securityOpt(s: SecurityOptions | undefined): string[] | null {
  const out = [
    ...(s?.noNewPrivileges !== undefined ? [`no-new-privileges:${s.noNewPrivileges}`] : []),
    ...(s?.unconfinedSystemPaths ? ['systempaths=unconfined'] : []),
    ...(s?.seccomp !== undefined ? [`seccomp=${s.seccomp}`] : []),
    ...(s?.apparmor !== undefined ? [`apparmor=${s.apparmor}`] : []),
  ];
  return out.length > 0 ? out : null;
}
