import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../../errors.js';
import type { ContainerEngine } from '../../runtime/engine.js';
import type { Healthcheck } from '../compose.js';
import type { ServiceHealth } from '../protocol/types.js';

/** One service to watch through the health window: its container, and its healthcheck if any. */
export interface WatchedService {
  readonly service: string;
  readonly containerId: string;
  readonly check?: Healthcheck;
}

/**
 * The health window of a deploy: every new service must keep running (no exit, no restart) for
 * `windowMs`, and a service with a healthcheck must pass it (compose semantics: `retries` failures in
 * a row after `start_period` make it unhealthy; it must have passed once by the end of the window).
 * Resolves with each service's health, or throws `runtime` naming the first service that failed.
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
  const state = new Map(services.map((s) => [s.service, { health: (s.check ? 'starting' : 'none') as ServiceHealth, failures: 0, nextCheck: started, restarts: engine.find(s.containerId).restartCount }]));
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
      if (!s.check || now < st.nextCheck) continue;
      st.nextCheck = now + s.check.intervalMs;
      const r = await engine.exec(c.id, s.check.argv, s.check.timeoutMs);
      if (r.exitCode === 0) {
        st.failures = 0;
        if (st.health !== 'healthy') onHealth(s.service, (st.health = 'healthy'));
      } else if (now - started >= s.check.startPeriodMs && ++st.failures >= s.check.retries) {
        onHealth(s.service, (st.health = 'unhealthy'));
        throw new BerthError('runtime', `service ${s.service} failed its healthcheck ${st.failures} times (exit ${r.exitCode}: ${r.output.trim().slice(0, 200) || 'no output'})`);
      }
    }
    if (now - started >= windowMs) {
      const pending = services.filter((s) => s.check && state.get(s.service)!.health !== 'healthy');
      if (pending.length === 0) return Object.fromEntries([...state].map(([k, v]) => [k, v.health]));
      throw new BerthError('runtime', `service ${pending[0]!.service} did not pass its healthcheck within the health window`);
    }
    // Never sleep past the end of the window: a short window must not last a whole poll.
    await sleep(Math.max(10, Math.min(pollMs, started + windowMs - Date.now())), undefined, { signal });
  }
}
