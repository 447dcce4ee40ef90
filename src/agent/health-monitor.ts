import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerEngine } from '../runtime/engine-api.js';
import { LiveContainers } from './live-containers.js';
import type { ServiceHealth } from '../protocol/types.js';
import { HealthProbe } from './reconcile/health.js';
import type { AppService } from '../compose/model.js';
import { withContainers } from './state.js';

/** Why the verdict changed: a check ran (its exit code and first 200 characters of output), or none ran. */
export type HealthCause = { readonly exitCode: number; readonly output: string } | { readonly reason: 'restarted' };

/** What a `health` event carries besides the service and its verdict. */
export type HealthDetail = { readonly container: string; readonly failures: number } & HealthCause;

export interface HealthMonitorOptions {
  readonly engine: Pick<ContainerEngine, 'list' | 'exec' | 'subscribe'>;
  /** The services that should be running now, from the app model (state.ts runningSpecs). */
  readonly services: () => readonly AppService[];
  /** True while a deploy runs: its health window checks the new containers itself. */
  readonly deploying: () => boolean;
  /** Health per service, as `reported` shows it (the deployer's map: one truth for both). */
  readonly health: Map<string, ServiceHealth>;
  readonly onChange: (service: string, health: ServiceHealth, detail: HealthDetail) => void;
  readonly tickMs?: number;
}

/**
 * Healthchecks between deploys, as docker runs them for the container's whole life: a service that
 * passed its health window and later fails its check `retries` times is reported unhealthy (and
 * healthy again once it passes). It only reports: restarting on unhealthy is not compose's semantics.
 */
export class HealthMonitor {
  /** Per container id; a restart of the container starts a new probe (and its start period). */
  private readonly probes = new Map<string, { startedAt: number; probe: HealthProbe }>();
  /** The containers as of the engine's last event: a tick between two changes lists nothing. */
  private readonly containers: LiveContainers;

  constructor(private readonly o: HealthMonitorOptions) {
    this.containers = new LiveContainers(o.engine);
  }

  async run(signal: AbortSignal): Promise<void> {
    const stop = this.containers.follow();
    try {
      while (!signal.aborted) {
        if (!this.o.deploying()) await this.tick(Date.now()).catch(() => undefined);
        await sleep(this.o.tickMs ?? 1000, undefined, { signal }).catch(() => undefined);
      }
    } finally {
      stop();
    }
  }

  async tick(now: number): Promise<void> {
    // Without a healthcheck among the specs there is nothing to probe, so the container list is looked at
    // only when there is one (and read only after the engine reported a change). The specs are a few
    // indexed rows, read every tick rather than cached: a deploy from another process (`berth deploy`
    // beside a local-only agent) changes them without going through this agent's deploy queue. Their
    // healthchecks come resolved from the app model (normalized once per revision), never parsed here.
    const checked = this.o.services().flatMap((s) => (s.healthcheck ? [{ ...s, check: s.healthcheck }] : []));
    const live = new Set<string>();
    for (const s of checked.length > 0 ? withContainers(checked, this.containers.list()) : []) {
      const c = s.container;
      if (!c) continue;
      // Kept while the container is down between runs too, so a restart is seen as one however the ticks fall.
      live.add(c.id);
      if (c.state !== 'running') continue;
      const startedAt = c.startedAt ?? now;
      let entry = this.probes.get(c.id);
      if (!entry || entry.startedAt !== startedAt) {
        const restarted = entry !== undefined;
        entry = { startedAt, probe: new HealthProbe(s.check, startedAt) };
        this.probes.set(c.id, entry);
        if (restarted) this.change(s.name, c.name, entry.probe, 'starting', { reason: 'restarted' });
        // First seen: a container that came through its health window healthy stays so until a check says otherwise.
        else if (this.o.health.get(s.name) === 'healthy') entry.probe.health = 'healthy';
      }
      const { probe } = entry;
      if (!probe.due(now)) continue;
      const r = await probe.probe(this.o.engine, c.id, now);
      if (r.changed) this.change(s.name, c.name, probe, r.changed, { exitCode: r.exitCode, output: r.output.trim().slice(0, 200) });
    }
    for (const id of this.probes.keys()) if (!live.has(id)) this.probes.delete(id);
  }

  private change(service: string, container: string, probe: HealthProbe, health: ServiceHealth, cause: HealthCause): void {
    probe.health = health;
    this.o.health.set(service, health);
    this.o.onChange(service, health, { container, failures: probe.failures, ...cause });
  }
}
