import type { HostPaths } from '../../host/paths.js';
import { HostSampler, type HostTelemetry } from './host.js';
import { KernelFileReader } from '../../host/kernel-file.js';
import type { ContainerEngine } from '../../runtime/engine-api.js';
import { ServiceSampler, type ServiceContainer, type ServiceTelemetry } from './services.js';

export { decodeThrottled, GET_THROTTLED, HostSampler, type HostSamplerOptions, type HostTelemetry, type ThrottleFlags, type Throttling } from './host.js';
export { ServiceSampler, type ServiceContainer, type ServiceSamplerOptions, type ServiceTelemetry } from './services.js';

/**
 * One telemetry message body, JSON-ready (plain numbers, strings and booleans; absent parts are left
 * out, never null or 0): the host, and each service by its name.
 */
export interface TelemetrySample {
  /** When the sample was taken, ISO 8601 UTC. */
  readonly time: string;
  readonly host: HostTelemetry;
  readonly services: Readonly<Record<string, ServiceTelemetry>>;
}

export interface TelemetrySamplerOptions {
  readonly host: HostPaths;
  /** berth's state root (its filesystem's free space is reported). */
  readonly stateRoot: string;
  readonly engine: Pick<ContainerEngine, 'stats'>;
  /** Wall clock for `time`, epoch ms. Default: Date.now. */
  readonly clock?: () => number;
  /** Monotonic ms for the services' CPU share. Default: performance.now. */
  readonly now?: () => number;
}

/**
 * Host and service telemetry in one sample. CPU shares are over the time since this sampler's previous
 * sample, so the agent keeps one sampler and calls it on its telemetry interval. Synchronous and
 * child-process free: a few dozen small reads of procfs, sysfs and cgroupfs, sharing one buffer.
 */
export class TelemetrySampler {
  private readonly hostSampler: HostSampler;
  private readonly serviceSampler: ServiceSampler;
  private readonly clock: () => number;
  private lastCpuUs: number | undefined;

  constructor(opts: TelemetrySamplerOptions) {
    this.hostSampler = new HostSampler({ host: opts.host, stateRoot: opts.stateRoot }, new KernelFileReader());
    this.serviceSampler = new ServiceSampler({ engine: opts.engine, ...(opts.now !== undefined && { now: opts.now }) });
    this.clock = opts.clock ?? Date.now;
  }

  sample(services: readonly ServiceContainer[]): TelemetrySample {
    const before = process.cpuUsage();
    const sample: TelemetrySample = {
      time: new Date(this.clock()).toISOString(),
      host: this.hostSampler.sample(),
      services: this.serviceSampler.sample(services),
    };
    const used = process.cpuUsage(before);
    this.lastCpuUs = used.user + used.system;
    return sample;
  }

  /**
   * CPU time (user + system, µs) the last `sample` took, from process.cpuUsage: the whole process, so
   * other threads' work in that window (GC, the libuv pool) counts too. Undefined before the first sample.
   */
  lastSampleCpuUs(): number | undefined {
    return this.lastCpuUs;
  }
}
