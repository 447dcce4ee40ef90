import { setTimeout as sleep } from 'node:timers/promises';
import type { BoardInfo } from '../board/index.js';
import type { HostPaths } from '../host/paths.js';
import type { ContainerEngine } from '../runtime/engine-api.js';
import { ownerOf } from '../compose/labels.js';
import { ConditionWatch, type ConditionEvent } from './conditions.js';
import { LiveContainers } from './live-containers.js';
import { TelemetrySampler, type TelemetrySample } from './telemetry/index.js';

export interface TelemetryLoopOptions {
  readonly engine: ContainerEngine;
  readonly board: BoardInfo;
  readonly host: HostPaths;
  readonly stateRoot: string;
  readonly intervalMs: number;
  /** Sends or spools one sample (the MQTT front end decides which). */
  readonly emit: (sample: TelemetrySample & { sampleCpuUs?: number }) => void;
  /** Low disk, under-voltage, throttling and OOM kills, once as they start and once as they end. */
  readonly onCondition: (event: ConditionEvent) => void;
}

/**
 * Samples host and services every interval. The interval can be changed by a fleet command; the new
 * one applies from the next tick. Whether a sample goes out or waits in the spool is `emit`'s to decide.
 */
export class TelemetryLoop {
  private intervalMs: number;
  private readonly sampler: TelemetrySampler;
  private readonly conditions = new ConditionWatch();
  private readonly containers: LiveContainers;

  constructor(private readonly o: TelemetryLoopOptions) {
    this.intervalMs = o.intervalMs;
    this.containers = new LiveContainers(o.engine);
    this.sampler = new TelemetrySampler({ host: o.host, stateRoot: o.stateRoot, engine: o.engine });
  }

  setInterval(ms: number): void {
    this.intervalMs = ms;
  }

  sampleOnce(): TelemetrySample & { sampleCpuUs?: number } {
    const services = this.containers.list().flatMap((c) => {
      const owner = ownerOf(c.options.labels);
      return owner ? [{ service: owner.service, container: c }] : [];
    });
    const sample = this.sampler.sample(services);
    const cpu = this.sampler.lastSampleCpuUs();
    return { ...sample, ...(cpu !== undefined && { sampleCpuUs: cpu }) };
  }

  async run(signal: AbortSignal): Promise<void> {
    const stop = this.containers.follow();
    try {
      while (!signal.aborted) {
        const sample = this.sampleOnce();
        this.o.emit(sample);
        for (const e of this.conditions.check(sample)) this.o.onCondition(e);
        await sleep(this.intervalMs, undefined, { signal }).catch(() => undefined);
      }
    } finally {
      stop();
    }
  }
}
