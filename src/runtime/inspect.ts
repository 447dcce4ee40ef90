import fs from 'node:fs';
import path from 'node:path';
import { priorityOf } from '../cgroup/priority.js';
import { Cgroup } from '../cgroup/v2.js';
import { cgroupV2Files, toLinuxResources } from '../cgroup/resources.js';
import type { BoardInfo } from '../board/index.js';
import type { ContainerRecord } from '../store/containers.js';
import type { ContainerEngine } from './engine.js';
import { readExit } from './monitor.js';
import { containerNetworkSettings } from '../network/inspect.js';

const iso = (ms: number | undefined): string => (ms === undefined ? '0001-01-01T00:00:00Z' : new Date(ms).toISOString());

/** docker-inspect-shaped view of a container, with the limits and whether this host enforces them. */
export function inspectContainer(engine: ContainerEngine, c: ContainerRecord, board: BoardInfo): Record<string, unknown> {
  const exit = readExit(engine.stateDir(c.id));
  const running = c.state === 'running';
  // Frozen by the pressure governor (cgroup v2 freezer): docker's "paused".
  const paused = running && engine.runtimeOf(c).cgroupsEnforced && new Cgroup(engine.cgroupDir(c.id)).frozen();
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
      Pid: running ? engine.pid(c.id) ?? 0 : 0,
      ExitCode: c.exitCode ?? 0,
      OOMKilled: c.oomKilled,
      OOMDetection: exit?.oomSource ?? (engine.runtimeOf(c).cgroupsEnforced ? 'memory.events' : 'none'),
      StartedAt: iso(c.startedAt),
      FinishedAt: iso(c.finishedAt),
      ...(c.state === 'dead' && { Error: 'the monitor ended before recording an exit status' }),
    },
    RestartCount: c.restartCount,
    Runtime: c.runtime,
    Config: { Cmd: o.cmd ?? null, Entrypoint: o.entrypoint ?? null, Env: o.env, WorkingDir: o.workdir ?? '', User: o.user ?? '', Labels: o.labels, Hostname: o.hostname ?? c.id.slice(0, 12) },
    HostConfig: {
      Memory: o.memory ?? 0, MemoryReservation: o.memoryReservation ?? 0, MemorySwap: o.memorySwap ?? 0, NanoCpus: Math.round((o.cpus ?? 0) * 1e9),
      CpuShares: o.cpuShares ?? 0, PidsLimit: o.pidsLimit ?? 0, ReadonlyRootfs: o.readOnly, NetworkMode: o.network,
      RestartPolicy: o.restart, Devices: o.devices, Binds: o.volumes, ...(o.dns && { Dns: o.dns }), ...(o.extraHosts && { ExtraHosts: o.extraHosts.map((h) => `${h.name}:${h.ip}`) }),
    },
    NetworkSettings: containerNetworkSettings(engine.networking.networks.attachmentsOf(c.id), o.ports ?? []),
    Limits: {
      Enforced: engine.runtimeOf(c).cgroupsEnforced,
      Priority: priorityOf(o.labels),
      Note: engine.runtimeOf(c).limitsNote,
      CgroupFiles: cgroupV2Files(resources),
    },
    LogPath: path.join(engine.stateDir(c.id), 'container.log'),
  };
}

export interface ContainerStats {
  readonly name: string;
  readonly id: string;
  readonly measured: boolean;
  readonly note?: string;
  readonly cpuUsageUsec?: number;
  readonly memoryCurrent?: number;
  readonly memoryPeak?: number;
  readonly memoryLimit?: number | 'max';
  readonly pids?: number;
}

const readNum = (file: string): number | undefined => {
  try {
    const v = fs.readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(v) ? Number(v) : undefined;
  } catch {
    return undefined;
  }
};

/** Usage from the container's cgroup: v2 files on a unified host, v1 files where runc placed it on a hybrid one. */
export function containerStats(engine: ContainerEngine, c: ContainerRecord, cgroupRoot = '/sys/fs/cgroup'): ContainerStats {
  const base = { name: c.name, id: c.id };
  if (c.state !== 'running') return { ...base, measured: false, note: 'not running' };
  const v2 = new Cgroup(engine.cgroupDir(c.id));
  const memoryCurrent = v2.exists() ? v2.number('memory.current') : undefined;
  if (memoryCurrent !== undefined) {
    const max = v2.number('memory.max');
    const peak = v2.number('memory.peak');
    return {
      ...base, measured: true,
      cpuUsageUsec: v2.keyed('cpu.stat')?.usage_usec ?? 0,
      memoryCurrent,
      ...(peak !== undefined && { memoryPeak: peak }),
      memoryLimit: max === Infinity ? 'max' : max,
      pids: v2.number('pids.current'),
    };
  }
  const v1 = (ctrl: string, file: string): number | undefined => readNum(path.join(cgroupRoot, ctrl, 'berth', c.id, file));
  const mem = v1('memory', 'memory.usage_in_bytes');
  if (mem !== undefined) {
    const cpuNs = v1('cpuacct', 'cpuacct.usage') ?? v1('cpu,cpuacct', 'cpuacct.usage');
    return {
      ...base, measured: true, note: 'cgroup v1 accounting (limits are not enforced on this host)',
      ...(cpuNs !== undefined && { cpuUsageUsec: Math.round(cpuNs / 1000) }),
      memoryCurrent: mem, memoryPeak: v1('memory', 'memory.max_usage_in_bytes'), memoryLimit: 'max', pids: v1('pids', 'pids.current'),
    };
  }
  return { ...base, measured: false, note: `no cgroup to read on this host (${engine.runtimeOf(c).limitsNote})` };
}
