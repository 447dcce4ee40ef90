import { BerthError } from '../../errors.js';
import type { ContainerEngine } from '../../runtime/engine-api.js';
import type { ContainerRecord } from '../../runtime/records.js';
import type { Healthcheck } from '../../compose/healthcheck.js';
import type { ServiceHealth } from '../../protocol/types.js';
import { ContainerWakeup } from './wakeup.js';

/** One service to watch: its container, and its healthcheck if any. */
export interface WatchedService {
  readonly service: string;
  readonly containerId: string;
  readonly check?: Healthcheck;
  /** A job others wait on to complete (`service_completed_successfully`): exit 0 is its success, not a failure. */
  readonly oneShot?: boolean;
}

/** What the health window and the dependency waits need of the engine. */
export type HealthEngine = Pick<ContainerEngine, 'find' | 'exec' | 'subscribe'>;

/**
 * A healthcheck's state for one container, with compose semantics: `retries` failures in a row after
 * `start_period` make it unhealthy, one pass makes it healthy. Shared by the health window of a deploy,
 * the deploy's dependency waits and the agent's checks between deploys, so all judge a service the same way.
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

  /** When the next check is due (epoch ms): what a waiting loop sleeps until. */
  nextDue(): number {
    return this.nextCheck;
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

const ended = (c: ContainerRecord): boolean => c.state === 'exited' || c.state === 'dead';
const exitText = (c: ContainerRecord): string => `exited with ${c.exitCode ?? 'no status'}${c.oomKilled ? ' (OOM-killed)' : ''}`;
const checkFailure = (service: string, probe: HealthProbe, r: { exitCode: number; output: string }): BerthError =>
  new BerthError('runtime', `service ${service} failed its healthcheck ${probe.failures} times (exit ${r.exitCode}: ${r.output.trim().slice(0, 200) || 'no output'})`);

/**
 * The health window of a deploy: every new service must keep running (no exit, no restart) for
 * `windowMs`, and a service with a healthcheck must pass it and must have passed once by the end of the
 * window; a one-shot service may end, with exit code 0 only. Resolves with each service's health, or
 * throws `runtime` naming the first service that failed. Wakes on the engine's events for the watched
 * containers and when a check or the window is due, never on a poll.
 */
export async function awaitHealthy(
  engine: HealthEngine,
  services: readonly WatchedService[],
  windowMs: number,
  signal: AbortSignal,
  onHealth: (service: string, health: ServiceHealth) => void,
): Promise<Record<string, ServiceHealth>> {
  // Subscribed before the first look at the containers, so no exit falls between the two.
  const wakeup = new ContainerWakeup(engine, services.map((s) => s.containerId));
  try {
    const started = Date.now();
    const state = new Map(services.map((s) => [s.service, { probe: s.check && !s.oneShot ? new HealthProbe(s.check, started) : undefined, restarts: engine.find(s.containerId).restartCount }]));
    const healthOf = (service: string): ServiceHealth => state.get(service)!.probe?.health ?? 'none';
    for (;;) {
      signal.throwIfAborted();
      const now = Date.now();
      let next = started + windowMs;
      for (const s of services) {
        const st = state.get(s.service)!;
        const c = engine.find(s.containerId);
        if (s.oneShot) {
          if (ended(c) && c.exitCode !== 0) throw new BerthError('runtime', `service ${s.service} ${exitText(c)} within the health window`);
          continue;
        }
        if (c.state !== 'running' || c.restartCount !== st.restarts) {
          throw new BerthError('runtime', `service ${s.service} ${c.state !== 'running' ? exitText(c) : 'restarted'} within the health window`);
        }
        if (!st.probe) continue;
        if (st.probe.due(now)) {
          const r = await st.probe.probe(engine, c.id, now);
          if (r.changed) onHealth(s.service, r.changed);
          if (r.changed === 'unhealthy') throw checkFailure(s.service, st.probe, r);
        }
        next = Math.min(next, st.probe.nextDue());
      }
      if (now - started >= windowMs) {
        const pending = services.filter((s) => state.get(s.service)!.probe && healthOf(s.service) !== 'healthy');
        if (pending.length === 0) return Object.fromEntries(services.map((s) => [s.service, healthOf(s.service)]));
        throw new BerthError('runtime', `service ${pending[0]!.service} did not pass its healthcheck within the health window`);
      }
      await wakeup.until(next, signal);
    }
  } finally {
    wakeup.close();
  }
}

/**
 * Waits until a dependency of `dependent` meets its `depends_on` condition: `service_healthy`, its
 * healthcheck passed (one is required); `service_completed_successfully`, its container exited 0.
 * Throws `runtime` naming the dependency when it can no longer get there (it exited, failed its check
 * `retries` times, or exited non-zero), `invalid` when `service_healthy` names a service without a
 * healthcheck. Event-driven like the health window; the caller's signal bounds it (a newer revision).
 */
export async function awaitDependency(
  engine: HealthEngine,
  dep: WatchedService,
  condition: 'service_healthy' | 'service_completed_successfully',
  dependent: string,
  signal: AbortSignal,
  onHealth: (service: string, health: ServiceHealth) => void,
): Promise<void> {
  const what = `service ${dep.service} (a dependency of ${dependent})`;
  if (condition === 'service_healthy' && !dep.check) {
    throw new BerthError('invalid', `services.${dependent}.depends_on.${dep.service}: condition service_healthy, but ${dep.service} has no healthcheck`, { hint: `give ${dep.service} a healthcheck, or use condition service_started` });
  }
  const wakeup = new ContainerWakeup(engine, [dep.containerId]);
  try {
    const probe = dep.check && new HealthProbe(dep.check, Date.now());
    for (;;) {
      signal.throwIfAborted();
      const c = engine.find(dep.containerId);
      if (condition === 'service_completed_successfully') {
        if (ended(c)) {
          if (c.exitCode === 0) return;
          throw new BerthError('runtime', `${what} ${exitText(c)}; ${dependent} needs it to complete successfully`);
        }
        await wakeup.until(Infinity, signal);
        continue;
      }
      if (c.state !== 'running') throw new BerthError('runtime', `${what} ${exitText(c)} before it was healthy`);
      const now = Date.now();
      if (probe!.due(now)) {
        const r = await probe!.probe(engine, c.id, now);
        if (r.changed) onHealth(dep.service, r.changed);
        if (r.changed === 'healthy') return;
        if (r.changed === 'unhealthy') throw checkFailure(dep.service, probe!, r);
      }
      await wakeup.until(probe!.nextDue(), signal);
    }
  } finally {
    wakeup.close();
  }
}
