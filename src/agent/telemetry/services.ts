import path from 'node:path';
import type { ContainerRecord } from '../../store/containers.js';
import { fieldAfter, KernelFileReader } from './reader.js';

/** A container the agent runs as a named service. The agent decides which containers those are. */
export interface ServiceContainer {
  readonly service: string;
  readonly container: ContainerRecord;
}

/** Where a container's cgroup v2 directory is: `ContainerEngine` satisfies this. */
export interface CgroupLocator {
  cgroupDir(id: string): string;
}

/**
 * One service's usage from its container's cgroup v2 files. `measured` is false when there is no v2
 * cgroup to read (not running, a v1-only host, the cgroup just went away); then every usage field is
 * absent rather than zero. A field whose file is missing is absent on its own: memory.peak before Linux
 * 5.19, and memory and pids on a hybrid host, where the container's unified-hierarchy cgroup has no
 * controllers and only cpu.stat (kept by the cgroup core) is there.
 */
export interface ServiceTelemetry {
  readonly measured: boolean;
  /** The record's state; `paused` when running but frozen (the pressure governor's cgroup freezer). */
  readonly state: ContainerRecord['state'] | 'paused';
  /** Restarts by the restart policy (the record's restartCount). */
  readonly restarts: number;
  /** CPU since the previous sample, as docker stats: 100 = one full core, so up to 100 × cores. Absent on a container's first sample. */
  readonly cpuPercent?: number;
  readonly memoryCurrentBytes?: number;
  readonly memoryPeakBytes?: number;
  /** memory.events oom_kill: tasks the kernel OOM-killed in this cgroup. */
  readonly oomKills?: number;
  readonly pids?: number;
  /** Why nothing, or only part, was measured. */
  readonly note?: string;
}

export interface ServiceSamplerOptions {
  readonly engine: CgroupLocator;
  /** Monotonic milliseconds; the CPU share divides by the time between samples. Default: performance.now. */
  readonly now?: () => number;
}

interface CpuMark {
  readonly usageUsec: number;
  readonly atMs: number;
}

/**
 * Samples services from their cgroups: five small files each (cpu.stat, memory.current, memory.peak,
 * memory.events, pids.current) plus cgroup.events for the frozen bit. Keeps the previous CPU usage per
 * container id for the CPU share, and forgets containers that were not in the last call.
 */
export class ServiceSampler {
  private readonly reader: KernelFileReader;
  private readonly now: () => number;
  private marks = new Map<string, CpuMark>();

  constructor(private readonly opts: ServiceSamplerOptions, reader = new KernelFileReader()) {
    this.reader = reader;
    this.now = opts.now ?? (() => performance.now());
  }

  sample(services: readonly ServiceContainer[]): Record<string, ServiceTelemetry> {
    const out: Record<string, ServiceTelemetry> = {};
    const marks = new Map<string, CpuMark>();
    for (const { service, container } of services) out[service] = this.one(container, marks);
    this.marks = marks;
    return out;
  }

  private one(c: ContainerRecord, marks: Map<string, CpuMark>): ServiceTelemetry {
    const base = { state: c.state, restarts: c.restartCount };
    if (c.state !== 'running') return { ...base, measured: false, note: 'not running' };
    const dir = this.opts.engine.cgroupDir(c.id);
    const file = (name: string): string => path.join(dir, name);
    // cpu.stat exists in every v2 cgroup (the cpu controller need not be enabled): no file, no v2 cgroup.
    const cpuStat = this.reader.text(file('cpu.stat'));
    const usageUsec = cpuStat === undefined ? undefined : fieldAfter(cpuStat, 'usage_usec');
    if (usageUsec === undefined) return { ...base, measured: false, note: `no cgroup v2 directory at ${dir}` };

    const atMs = this.now();
    const mark = { usageUsec, atMs };
    marks.set(c.id, mark);
    const prev = this.marks.get(c.id);
    // µs per ms is tenths of a percent of one core.
    // A restarted container has a new cgroup whose counter starts again at 0: no delta across that.
    const cpuPercent = prev !== undefined && usageUsec >= prev.usageUsec && atMs > prev.atMs
      ? Math.round((usageUsec - prev.usageUsec) / (atMs - prev.atMs)) / 10
      : undefined;
    const events = this.reader.text(file('memory.events'));
    const oomKills = events === undefined ? undefined : fieldAfter(events, 'oom_kill');
    const memoryCurrentBytes = this.reader.integer(file('memory.current'));
    const memoryPeakBytes = this.reader.integer(file('memory.peak'));
    const pids = this.reader.integer(file('pids.current'));
    const cgEvents = this.reader.text(file('cgroup.events'));
    const frozen = cgEvents !== undefined && fieldAfter(cgEvents, 'frozen') === 1;
    // A hybrid host's unified hierarchy has the container (and cpu.stat, which needs no controller) but
    // its memory and pids controllers are bound to v1: report the CPU alone, and say so.
    const cpuOnly = memoryCurrentBytes === undefined && pids === undefined;
    return {
      ...base,
      ...(frozen && { state: 'paused' as const }),
      measured: true,
      ...(cpuOnly && { note: 'CPU only: no memory or pids controller in this cgroup (hybrid host, or controllers not enabled)' }),
      ...(cpuPercent !== undefined && { cpuPercent }),
      ...(memoryCurrentBytes !== undefined && { memoryCurrentBytes }),
      ...(memoryPeakBytes !== undefined && { memoryPeakBytes }),
      ...(oomKills !== undefined && { oomKills }),
      ...(pids !== undefined && { pids }),
    };
  }
}
