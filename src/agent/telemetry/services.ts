import type { ContainerEngine } from '../../runtime/engine-api.js';
import type { ContainerRecord } from '../../runtime/records.js';

/** A container the agent runs as a named service. The agent decides which containers those are. */
export interface ServiceContainer {
  readonly service: string;
  readonly container: ContainerRecord;
}

/**
 * One service's usage from its container's cgroup v2 files (the engine's `stats`). `measured` is false
 * when there is no v2 cgroup to read (not running, a v1-only host, the cgroup just went away); then
 * every usage field is absent rather than zero. A field whose file is missing is absent on its own:
 * memory.peak before Linux 5.19, and memory and pids on a hybrid host, where the container's
 * unified-hierarchy cgroup has no controllers and only cpu.stat (kept by the cgroup core) is there.
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
  readonly engine: Pick<ContainerEngine, 'stats'>;
  /** Monotonic milliseconds; the CPU share divides by the time between samples. Default: performance.now. */
  readonly now?: () => number;
}

interface CpuMark {
  readonly usageUsec: number;
  readonly atMs: number;
}

/**
 * Samples services through the engine's `stats` (one reader of the cgroup files for the CLI, inspect
 * and telemetry: runtime/stats.ts). Keeps, per container start, the previous CPU usage for the CPU
 * share, and forgets containers that were not in the last call. Telemetry reports the v2 accounting
 * only (`v2Only`): on a hybrid host, whose unified hierarchy has just cpu.stat, that is the CPU alone.
 */
export class ServiceSampler {
  private readonly now: () => number;
  private marks = new Map<string, CpuMark>();

  constructor(private readonly opts: ServiceSamplerOptions) {
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
    // The record as listed: no lookup per service (a container that ended since has no cgroup to read).
    const st = this.opts.engine.stats(c, { v2Only: true });
    const usageUsec = st.cpuUsageUsec;
    if (!st.measured || usageUsec === undefined) return { ...base, measured: false, note: st.note ?? 'not measured' };

    const atMs = this.now();
    // A restart (a new start time) means a new cgroup: its counter starts again at 0, so no delta across
    // it. A counter that went back is the same thing seen late.
    const key = `${c.id}@${c.startedAt ?? 0}`;
    const prev = this.marks.get(key);
    const restarted = prev !== undefined && usageUsec < prev.usageUsec;
    marks.set(key, { usageUsec, atMs });
    // µs per ms is tenths of a percent of one core.
    const cpuPercent = prev !== undefined && !restarted && atMs > prev.atMs ? Math.round((usageUsec - prev.usageUsec) / (atMs - prev.atMs)) / 10 : undefined;
    const { memoryCurrent: memoryCurrentBytes, pids } = st;
    return {
      ...base,
      ...(st.frozen === true && { state: 'paused' as const }),
      measured: true,
      // The reader's "CPU only" note: a hybrid host's unified cgroup, or controllers not enabled.
      ...(st.note !== undefined && { note: st.note }),
      ...(cpuPercent !== undefined && { cpuPercent }),
      ...(memoryCurrentBytes !== undefined && { memoryCurrentBytes }),
      ...(st.memoryPeak !== undefined && { memoryPeakBytes: st.memoryPeak }),
      ...(st.oomKills !== undefined && { oomKills: st.oomKills }),
      ...(pids !== undefined && { pids }),
    };
  }
}
