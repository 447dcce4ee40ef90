import path from 'node:path';
import { fieldAfter, KernelFileReader, leadingInt } from '../host/kernel-file.js';
import type { ContainerRecord } from './records.js';
import type { ContainerStats } from './engine-api.js';

/** Read when present; absent ones are remembered per container run (memory.peak before 5.19, v1-bound controllers). */
const OPTIONAL = ['memory.current', 'memory.peak', 'memory.max', 'memory.events', 'pids.current', 'cgroup.events'] as const;

/**
 * A container's usage from its cgroup files: the one reader behind `berth stats`, inspect and the
 * agent's telemetry. On a unified host the v2 directory has everything. On a hybrid host runc places
 * the container in the unified hierarchy too, where only cpu.stat (kept by the cgroup core) exists,
 * while memory and pids live on v1: then the v1 files are read (`source: 'v1'`). Files a run's cgroup
 * lacked are not opened again during that run (a failed open costs a thrown error each time); one
 * buffer is shared by all reads (KernelFileReader).
 */
export class CgroupStatsReader {
  /** Per `id@startedAt`: the optional files that run's cgroup did not have. */
  private readonly absent = new Map<string, Set<string>>();

  constructor(private readonly reader = new KernelFileReader()) {}

  /** `dir`: the container's v2 directory; `v1Root`: where the v1 hierarchies are mounted, if any. */
  read(c: ContainerRecord, dir: string, v1Root?: string): ContainerStats {
    const base = { name: c.name, id: c.id };
    if (c.state !== 'running') {
      this.forget(c.id);
      return { ...base, measured: false, note: 'not running' };
    }
    const file = (name: string): string => path.join(dir, name);
    // cpu.stat exists in every v2 cgroup (the cpu controller need not be enabled): no file, no v2 cgroup.
    const cpuStat = this.reader.text(file('cpu.stat'));
    const usageUsec = cpuStat === undefined ? undefined : fieldAfter(cpuStat, 'usage_usec');
    const key = `${c.id}@${c.startedAt ?? 0}`;
    let absent = this.absent.get(key);
    if (!absent) {
      this.forget(c.id);
      absent = new Set();
      this.absent.set(key, absent);
    }
    const text: Partial<Record<(typeof OPTIONAL)[number], string>> = {};
    if (usageUsec !== undefined) {
      for (const f of OPTIONAL) {
        if (absent.has(f)) continue;
        const t = this.reader.text(file(f));
        if (t === undefined) absent.add(f);
        else text[f] = t;
      }
    }
    const int = (t: string | undefined): number | undefined => (t === undefined ? undefined : leadingInt(t, 0));
    const memoryCurrent = int(text['memory.current']);
    const pids = int(text['pids.current']);
    if (usageUsec !== undefined && (memoryCurrent !== undefined || pids !== undefined)) {
      const memoryPeak = int(text['memory.peak']);
      const max = text['memory.max']?.trim();
      const oomKills = text['memory.events'] === undefined ? undefined : fieldAfter(text['memory.events'], 'oom_kill');
      return {
        ...base, measured: true, source: 'v2', cpuUsageUsec: usageUsec,
        ...(memoryCurrent !== undefined && { memoryCurrent }),
        ...(memoryPeak !== undefined && { memoryPeak }),
        ...(max !== undefined && { memoryLimit: max === 'max' ? 'max' : Number(max) }),
        ...(oomKills !== undefined && { oomKills }),
        ...(pids !== undefined && { pids }),
        frozen: text['cgroup.events'] !== undefined && fieldAfter(text['cgroup.events'], 'frozen') === 1,
      };
    }
    const v1 = v1Root === undefined ? undefined : this.readV1(c.id, v1Root);
    if (v1) return { ...base, ...v1, ...(usageUsec !== undefined && { cpuUsageUsec: usageUsec }) };
    if (usageUsec !== undefined) {
      return { ...base, measured: true, source: 'v2', cpuUsageUsec: usageUsec, note: 'CPU only: no memory or pids controller in this cgroup (hybrid host, or controllers not enabled)' };
    }
    return { ...base, measured: false, note: `no cgroup v2 directory at ${dir}` };
  }

  /** Drops what was remembered about a container's runs (it was removed, or runs again). */
  forget(id: string): void {
    for (const key of this.absent.keys()) if (key.startsWith(`${id}@`)) this.absent.delete(key);
  }

  private readV1(id: string, root: string): Omit<ContainerStats, 'name' | 'id'> | undefined {
    const num = (ctrl: string, f: string): number | undefined => {
      const t = this.reader.text(path.join(root, ctrl, 'berth', id, f));
      return t === undefined ? undefined : leadingInt(t.trim(), 0);
    };
    const mem = num('memory', 'memory.usage_in_bytes');
    if (mem === undefined) return undefined;
    const cpuNs = num('cpuacct', 'cpuacct.usage') ?? num('cpu,cpuacct', 'cpuacct.usage');
    const peak = num('memory', 'memory.max_usage_in_bytes');
    const pids = num('pids', 'pids.current');
    return {
      measured: true, source: 'v1', note: 'cgroup v1 accounting (limits are not enforced on this host)',
      ...(cpuNs !== undefined && { cpuUsageUsec: Math.round(cpuNs / 1000) }),
      memoryCurrent: mem, ...(peak !== undefined && { memoryPeak: peak }), memoryLimit: 'max', ...(pids !== undefined && { pids }),
    };
  }
}
