import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../../errors.js';
import type { ContainerEngine } from '../../runtime/engine-api.js';
import type { Healthcheck } from '../../compose/healthcheck.js';
import type { ServiceHealth } from '../../protocol/types.js';

/** One service to watch: its container, and its healthcheck if any. */
export interface WatchedService {
  readonly service: string;
  readonly containerId: string;
  readonly check?: Healthcheck;
}

/**
 * A healthcheck's state for one container, with compose semantics: `retries` failures in a row after
 * `start_period` make it unhealthy, one pass makes it healthy. Shared by the health window of a deploy
 * and by the agent's checks between deploys, so both judge a service the same way.
 */
export class HealthProbe {
  health: ServiceHealth = 'starting';
  failures = 0;
  private nextCheck: number;

  constructor(
    readonly check: Healthcheck,
    private readonly startedAt: number,
  ) {
    this.nextCheck = startedAt;
  }

  due(now: number): boolean {
    return now >= this.nextCheck;
  }

  /** Runs the check once; returns the new health when it changed, with the check's output. */
  async probe(engine: Pick<ContainerEngine, 'exec'>, containerId: string, now: number): Promise<{ changed?: ServiceHealth; exitCode: number; output: string }> {
    this.nextCheck = now + this.check.intervalMs;
    const r = await engine.exec(containerId, this.check.argv, this.check.timeoutMs);
    const before = this.health;
    if (r.exitCode === 0) {
      this.failures = 0;
      this.health = 'healthy';
    } else if (now - this.startedAt >= this.check.startPeriodMs && ++this.failures >= this.check.retries) {
      this.health = 'unhealthy';
    }
    return { ...(this.health !== before && { changed: this.health }), exitCode: r.exitCode, output: r.output };
  }
}

/**
 * The health window of a deploy: every new service must keep running (no exit, no restart) for
 * `windowMs`, and a service with a healthcheck must pass it and must have passed once by the end of the
 * window. Resolves with each service's health, or throws `runtime` naming the first service that failed.
 */
export async function awaitHealthy(
  engine: ContainerEngine,
  services: readonly WatchedService[],
  windowMs: number,
  signal: AbortSignal,
  onHealth: (service: string, health: ServiceHealth) => void,
  pollMs = 500,
): Promise<Record<string, ServiceHealth>> {
  const started = Date.now();
  const state = new Map(services.map((s) => [s.service, { probe: s.check && new HealthProbe(s.check, started), restarts: engine.find(s.containerId).restartCount }]));
  const healthOf = (service: string): ServiceHealth => state.get(service)!.probe?.health ?? 'none';
  for (;;) {
    signal.throwIfAborted();
    const now = Date.now();
    for (const s of services) {
      const st = state.get(s.service)!;
      const c = engine.find(s.containerId);
      if (c.state !== 'running' || c.restartCount !== st.restarts) {
        const why = c.state !== 'running' ? `exited with ${c.exitCode ?? 'no status'}${c.oomKilled ? ' (OOM-killed)' : ''}` : 'restarted';
        throw new BerthError('runtime', `service ${s.service} ${why} within the health window`);
      }
      if (!st.probe?.due(now)) continue;
      const r = await st.probe.probe(engine, c.id, now);
      if (r.changed) onHealth(s.service, r.changed);
      if (r.changed === 'unhealthy') {
        throw new BerthError('runtime', `service ${s.service} failed its healthcheck ${st.probe.failures} times (exit ${r.exitCode}: ${r.output.trim().slice(0, 200) || 'no output'})`);
      }
    }
    if (now - started >= windowMs) {
      const pending = services.filter((s) => s.check && healthOf(s.service) !== 'healthy');
      if (pending.length === 0) return Object.fromEntries(services.map((s) => [s.service, healthOf(s.service)]));
      throw new BerthError('runtime', `service ${pending[0]!.service} did not pass its healthcheck within the health window`);
    }
    // Never sleep past the end of the window: a short window must not last a whole poll.
    await sleep(Math.max(10, Math.min(pollMs, started + windowMs - Date.now())), undefined, { signal });
  }
}
