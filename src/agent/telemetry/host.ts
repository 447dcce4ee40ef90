import fs from 'node:fs';
import { BerthError, isErrno } from '../../errors.js';
import type { HostPaths } from '../../host/paths.js';
import { fieldAfter, KernelFileReader, leadingInt } from '../../host/kernel-file.js';

/**
 * What the host looks like at one instant. Every part is read from one kernel file (or statfs); a part
 * whose source is absent on this host (no thermal zone, no Raspberry Pi firmware, no swap line) is
 * omitted, never filled with a guess.
 */
export interface HostTelemetry {
  /** Busy share of all cores since the previous sample, 0–100 (100 = every core busy); absent on the first sample. */
  readonly cpu?: { readonly percent: number };
  /** /proc/loadavg. */
  readonly load?: { readonly avg1: number; readonly avg5: number; readonly avg15: number };
  /** /proc/meminfo: used = total − available. */
  readonly memory?: { readonly totalBytes: number; readonly availableBytes: number; readonly usedBytes: number };
  readonly swap?: { readonly totalBytes: number; readonly freeBytes: number; readonly usedBytes: number };
  /** statfs of the state root; free counts what df calls Avail (blocks not reserved for root). */
  readonly disk?: { readonly path: string; readonly totalBytes: number; readonly freeBytes: number; readonly totalInodes: number; readonly freeInodes: number };
  /** The hottest thermal zone, °C. */
  readonly temperatureC?: number;
  /** Raspberry Pi firmware's get_throttled, decoded. */
  readonly throttling?: Throttling;
  /** /proc/uptime. */
  readonly uptimeSeconds?: number;
  /** /proc/net/dev of the agent's network namespace, per interface except lo. */
  readonly network?: Readonly<Record<string, { readonly rxBytes: number; readonly txBytes: number }>>;
}

export interface ThrottleFlags {
  readonly underVoltage: boolean;
  readonly frequencyCapped: boolean;
  readonly throttled: boolean;
  readonly softTemperatureLimit: boolean;
}

/** Bits 0–3 are the state now, bits 16–19 the same conditions since boot. */
export interface Throttling {
  /** The firmware's value as it printed it (hex). */
  readonly raw: string;
  readonly now: ThrottleFlags;
  readonly sinceBoot: ThrottleFlags;
}

export const GET_THROTTLED = '/sys/devices/platform/soc/soc:firmware/get_throttled';

/** Decodes get_throttled's hex; undefined when it is not hex. */
export function decodeThrottled(raw: string): Throttling | undefined {
  const text = raw.trim();
  if (!/^(0x)?[0-9a-f]+$/i.test(text)) return undefined;
  const bits = parseInt(text, 16);
  const flags = (b: number): ThrottleFlags => ({
    underVoltage: (b & 1) !== 0,
    frequencyCapped: (b & 2) !== 0,
    throttled: (b & 4) !== 0,
    softTemperatureLimit: (b & 8) !== 0,
  });
  return { raw: text, now: flags(bits & 0xf), sinceBoot: flags((bits >>> 16) & 0xf) };
}

export interface HostSamplerOptions {
  readonly host: HostPaths;
  /** berth's state root: its filesystem is the one whose free space matters. Not a host fact, so not under `host`. */
  readonly stateRoot: string;
}

interface CpuTimes {
  readonly busy: number;
  readonly total: number;
}

/**
 * Samples the host from /proc and /sys (through `host`, so tests use fixture trees) and statfs. Holds
 * the previous /proc/stat counters for the CPU share, and the thermal zone list, found once: zones do
 * not come and go while the system runs. No child processes; a handful of small file reads per sample.
 * Not safe to share between callers that sample on their own schedules (the CPU delta is per sampler).
 */
export class HostSampler {
  private readonly reader: KernelFileReader;
  private prevCpu: CpuTimes | undefined;
  private thermalZones: string[] | undefined;
  /** get_throttled is there from boot or never (not a Pi): once absent, not tried again. */
  private noFirmware = false;

  constructor(private readonly opts: HostSamplerOptions, reader = new KernelFileReader()) {
    this.reader = reader;
  }

  sample(): HostTelemetry {
    const cpu = this.cpu();
    const load = this.load();
    const mem = this.memory();
    const disk = this.disk();
    const temperatureC = this.temperature();
    const throttledText = this.noFirmware ? undefined : this.read(GET_THROTTLED);
    this.noFirmware = throttledText === undefined;
    const throttling = throttledText === undefined ? undefined : decodeThrottled(throttledText);
    const uptimeText = this.read('/proc/uptime');
    const uptimeSeconds = uptimeText === undefined ? undefined : parseFloat(uptimeText);
    const network = this.network();
    return {
      ...(cpu !== undefined && { cpu: { percent: cpu } }),
      ...(load !== undefined && { load }),
      ...(mem.memory !== undefined && { memory: mem.memory }),
      ...(mem.swap !== undefined && { swap: mem.swap }),
      ...(disk !== undefined && { disk }),
      ...(temperatureC !== undefined && { temperatureC }),
      ...(throttling !== undefined && { throttling }),
      ...(uptimeSeconds !== undefined && !Number.isNaN(uptimeSeconds) && { uptimeSeconds }),
      ...(network !== undefined && { network }),
    };
  }

  private read(hostPath: string, head = false): string | undefined {
    return this.reader.text(this.opts.host.resolve(hostPath), head);
  }

  /** Share of busy jiffies in the aggregate `cpu` line since the last sample. */
  private cpu(): number | undefined {
    // The first read(2) holds the aggregate line; the rest (per-core lines, the long intr line) is not needed.
    const text = this.read('/proc/stat', true);
    if (text === undefined || !text.startsWith('cpu ')) return undefined;
    const end = text.indexOf('\n');
    // user nice system idle iowait irq softirq steal [guest guest_nice: already counted in user and nice]
    const f = text.slice(4, end < 0 ? undefined : end).trim().split(' ', 8).map(Number);
    if (f.length < 4 || f.some(Number.isNaN)) return undefined;
    const total = f.reduce((a, b) => a + b, 0);
    const idle = f[3]! + (f[4] ?? 0);
    const now = { busy: total - idle, total };
    const prev = this.prevCpu;
    this.prevCpu = now;
    if (prev === undefined || now.total <= prev.total) return undefined;
    return round1((100 * (now.busy - prev.busy)) / (now.total - prev.total));
  }

  private load(): HostTelemetry['load'] {
    const text = this.read('/proc/loadavg');
    if (text === undefined) return undefined;
    const [a, b, c] = text.split(' ', 3).map(Number);
    if (a === undefined || b === undefined || c === undefined || [a, b, c].some(Number.isNaN)) return undefined;
    return { avg1: a, avg5: b, avg15: c };
  }

  private memory(): Pick<HostTelemetry, 'memory' | 'swap'> {
    const text = this.read('/proc/meminfo');
    if (text === undefined) return {};
    const kb = (key: string): number | undefined => {
      const v = fieldAfter(text, key);
      return v === undefined ? undefined : v * 1024;
    };
    const total = kb('MemTotal');
    const available = kb('MemAvailable');
    const swapTotal = kb('SwapTotal');
    const swapFree = kb('SwapFree');
    return {
      ...(total !== undefined && available !== undefined && { memory: { totalBytes: total, availableBytes: available, usedBytes: total - available } }),
      ...(swapTotal !== undefined && swapFree !== undefined && { swap: { totalBytes: swapTotal, freeBytes: swapFree, usedBytes: swapTotal - swapFree } }),
    };
  }

  private disk(): HostTelemetry['disk'] {
    let s: fs.StatsFs;
    try {
      s = fs.statfsSync(this.opts.stateRoot);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw new BerthError('host', `cannot statfs ${this.opts.stateRoot}: ${(err as Error).message}`, { cause: err });
    }
    return { path: this.opts.stateRoot, totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize, totalInodes: s.files, freeInodes: s.ffree };
  }

  private temperature(): number | undefined {
    this.thermalZones ??= this.findThermalZones();
    let max: number | undefined;
    for (const zone of this.thermalZones) {
      let milli: number | undefined;
      try {
        milli = this.reader.integer(this.opts.host.resolve(`/sys/class/thermal/${zone}/temp`));
      } catch {
        // A sensor that is not ready answers EAGAIN/EINVAL/ENODATA: skip it this time, the others still count.
        continue;
      }
      if (milli !== undefined && (max === undefined || milli > max)) max = milli;
    }
    return max === undefined ? undefined : round1(max / 1000);
  }

  private findThermalZones(): string[] {
    try {
      return fs.readdirSync(this.opts.host.resolve('/sys/class/thermal')).filter((d) => d.startsWith('thermal_zone')).sort();
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
      throw new BerthError('host', `cannot list /sys/class/thermal: ${(err as Error).message}`, { cause: err });
    }
  }

  /** /proc/net/dev: two header lines, then `iface: rx_bytes rx_packets … (8 fields) tx_bytes …`. */
  private network(): HostTelemetry['network'] {
    const text = this.read('/proc/net/dev');
    if (text === undefined) return undefined;
    const out: Record<string, { rxBytes: number; txBytes: number }> = {};
    let line = text.indexOf('\n', text.indexOf('\n') + 1) + 1;
    while (line > 0 && line < text.length) {
      const next = text.indexOf('\n', line);
      const colon = text.indexOf(':', line);
      if (colon < 0 || (next >= 0 && colon > next)) break;
      const name = text.slice(line, colon).trim();
      if (name !== 'lo') {
        const fields = text.slice(colon + 1, next < 0 ? undefined : next).trim().split(/ +/, 9);
        const rx = leadingInt(fields[0] ?? '', 0);
        const tx = leadingInt(fields[8] ?? '', 0);
        if (rx !== undefined && tx !== undefined) out[name] = { rxBytes: rx, txBytes: tx };
      }
      line = next + 1;
    }
    return out;
  }
}

const round1 = (n: number): number => Math.round(n * 10) / 10;
