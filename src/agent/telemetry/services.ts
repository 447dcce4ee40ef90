import path from 'node:path';
import type { ContainerRecord } from '../../runtime/records.js';
import { fieldAfter, KernelFileReader, leadingInt } from './reader.js';

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
  /** Files this cgroup did not have: not read again (a failed open costs a thrown error each time). */
  readonly absent: Set<string>;
}

/** Read when present; absent ones are remembered per container (memory.peak before 5.19, v1-bound controllers). */
const OPTIONAL = ['memory.current', 'memory.peak', 'memory.events', 'pids.current', 'cgroup.events'] as const;

/**
 * Samples services from their cgroups: six small files each (cpu.stat, memory.current, memory.peak,
 * memory.events, pids.current, and cgroup.events for the frozen bit). Keeps, per container start, the
 * previous CPU usage for the CPU share and which files the cgroup lacks, and forgets containers that
 * were not in the last call. A controller enabled for a running container's cgroup later is seen once
 * the container restarts.
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
    // A restart (a new start time) means a new cgroup: its counter starts again at 0, so no delta across
    // it, and its files are looked at afresh. A counter that went back is the same thing seen late.
    const key = `${c.id}@${c.startedAt ?? 0}`;
    const prev = this.marks.get(key);
    const restarted = prev !== undefined && usageUsec < prev.usageUsec;
    const absent = prev !== undefined && !restarted ? prev.absent : new Set<string>();
    marks.set(key, { usageUsec, atMs, absent });
    // µs per ms is tenths of a percent of one core.
    const cpuPercent = prev !== undefined && !restarted && atMs > prev.atMs ? Math.round((usageUsec - prev.usageUsec) / (atMs - prev.atMs)) / 10 : undefined;
    const text: Partial<Record<(typeof OPTIONAL)[number], string>> = {};
    for (const f of OPTIONAL) {
      if (absent.has(f)) continue;
      const t = this.reader.text(file(f));
      if (t === undefined) absent.add(f);
      else text[f] = t;
    }
    const int = (t: string | undefined): number | undefined => (t === undefined ? undefined : leadingInt(t, 0));
    const memoryCurrentBytes = int(text['memory.current']);
    const memoryPeakBytes = int(text['memory.peak']);
    const pids = int(text['pids.current']);
    const oomKills = text['memory.events'] === undefined ? undefined : fieldAfter(text['memory.events'], 'oom_kill');
    const frozen = text['cgroup.events'] !== undefined && fieldAfter(text['cgroup.events'], 'frozen') === 1;
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
