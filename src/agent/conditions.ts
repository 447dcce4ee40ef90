import type { TelemetrySample } from './telemetry/index.js';

/** A host or service condition the fleet should hear about once when it starts and once when it ends. */
export type ConditionEvent =
  | { readonly kind: 'low-disk'; readonly active: boolean; readonly path: string; readonly freeBytes: number; readonly totalBytes: number }
  | { readonly kind: 'under-voltage' | 'throttled'; readonly active: boolean; readonly raw: string }
  | { readonly kind: 'oom-kill'; readonly service: string; readonly oomKills: number; readonly new: number };

export interface ConditionLimits {
  /** Low disk below this share of the state root's filesystem (percent) … */
  readonly lowDiskPct: number;
  /** … or below this many bytes, whichever is larger; it clears 20 % above, so it does not flap. */
  readonly lowDiskBytes: number;
}

export const DEFAULT_CONDITION_LIMITS: ConditionLimits = { lowDiskPct: 10, lowDiskBytes: 256 * 1024 * 1024 };

/**
 * Turns telemetry samples into edge-triggered events: low disk, under-voltage and throttling (from the
 * Pi firmware's bits for "now"), and OOM kills inside a service (memory.events' oom_kill going up, which
 * also counts kills that left the container running). Pure: the caller feeds samples in order.
 */
export class ConditionWatch {
  private readonly active = new Set<string>();
  private readonly oomKills = new Map<string, number>();

  constructor(private readonly limits: ConditionLimits = DEFAULT_CONDITION_LIMITS) {}

  check(sample: TelemetrySample): ConditionEvent[] {
    const out: ConditionEvent[] = [];
    const edge = (key: string, on: boolean, make: (active: boolean) => ConditionEvent): void => {
      if (on === this.active.has(key)) return;
      if (on) this.active.add(key);
      else this.active.delete(key);
      out.push(make(on));
    };
    const disk = sample.host.disk;
    if (disk && disk.totalBytes > 0) {
      const threshold = Math.max((disk.totalBytes * this.limits.lowDiskPct) / 100, this.limits.lowDiskBytes);
      const low = this.active.has('low-disk') ? disk.freeBytes < threshold * 1.2 : disk.freeBytes < threshold;
      edge('low-disk', low, (active) => ({ kind: 'low-disk', active, path: disk.path, freeBytes: disk.freeBytes, totalBytes: disk.totalBytes }));
    }
    const t = sample.host.throttling;
    if (t) {
      edge('under-voltage', t.now.underVoltage, (active) => ({ kind: 'under-voltage', active, raw: t.raw }));
      edge('throttled', t.now.throttled || t.now.frequencyCapped || t.now.softTemperatureLimit, (active) => ({ kind: 'throttled', active, raw: t.raw }));
    }
    for (const [service, s] of Object.entries(sample.services)) {
      if (s.oomKills === undefined) continue;
      const before = this.oomKills.get(service);
      this.oomKills.set(service, s.oomKills);
      // The first sample of a service is the baseline: kills before the agent looked were reported then.
      if (before !== undefined && s.oomKills > before) out.push({ kind: 'oom-kill', service, oomKills: s.oomKills, new: s.oomKills - before });
    }
    return out;
  }
}
