import { setTimeout as sleep } from 'node:timers/promises';
import { toBerthError } from '../errors.js';
import type { ContainerEngine } from '../runtime/engine.js';
import { decideRestart, DEFAULT_BACKOFF, type BackoffConfig } from './restart-policy.js';

/** Restarts in a row (none lasting `healthyAfterMs`) that make a crash loop. */
export const CRASH_LOOP_RESTARTS = 5;

export interface SupervisorEvent {
  readonly type: 'adopted' | 'exited' | 'restart-scheduled' | 'restarted' | 'restart-failed' | 'crash-loop' | 'backoff-reset';
  readonly container: string;
  readonly detail: Record<string, unknown>;
}

/**
 * Keeps containers to their restart policies. It owns no container: each runs under its own monitor, so
 * the supervisor can be killed and restarted at will. On start it re-adopts what is running (the engine
 * checks each monitor's pid against its start time) and carries on with the restart counts on record.
 */
export class Supervisor {
  /** Restarts in a row per container id; reset after `healthyAfterMs` of uptime. */
  private readonly consecutive = new Map<string, number>();
  private readonly reported = new Set<string>();

  constructor(
    private readonly engine: ContainerEngine,
    private readonly onEvent: (e: SupervisorEvent) => void,
    private readonly backoff: BackoffConfig = DEFAULT_BACKOFF,
    private readonly intervalMs = 500,
  ) {}

  /** Runs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    for (const c of this.engine.list()) {
      if (c.state === 'running') {
        this.onEvent({ type: 'adopted', container: c.name, detail: { id: c.id, pid: this.engine.pid(c.id), restartCount: c.restartCount } });
      } else if (c.options.restart.name === 'always' && c.stoppedByUser && c.startedAt !== undefined) {
        // docker: `always` brings a manually stopped container back when the daemon starts; `unless-stopped` does not.
        try {
          await this.engine.start(c.id);
          this.onEvent({ type: 'restarted', container: c.name, detail: { reason: 'agent start (restart=always)', restartCount: c.restartCount } });
        } catch (err) {
          this.onEvent({ type: 'restart-failed', container: c.name, detail: { error: toBerthError(err).message } });
        }
      }
    }
    while (!signal.aborted) {
      await this.tick();
      await sleep(this.intervalMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** One pass over all containers: report exits, reset healthy backoffs, restart what is due. */
  async tick(now = Date.now()): Promise<void> {
    for (const c of this.engine.list()) {
      if (c.state === 'running') {
        this.reported.delete(c.id);
        if ((this.consecutive.get(c.id) ?? 0) > 0 && now - (c.startedAt ?? now) >= this.backoff.healthyAfterMs) {
          this.consecutive.set(c.id, 0);
          this.onEvent({ type: 'backoff-reset', container: c.name, detail: { upMs: now - (c.startedAt ?? now) } });
        }
        continue;
      }
      const n = this.consecutive.get(c.id) ?? 0;
      const decision = decideRestart(c, n, this.backoff);
      if (!this.reported.has(c.id) && c.startedAt !== undefined) {
        this.reported.add(c.id);
        this.onEvent({ type: 'exited', container: c.name, detail: { exitCode: c.exitCode, oomKilled: c.oomKilled, state: c.state } });
        if (decision.restart) this.onEvent({ type: 'restart-scheduled', container: c.name, detail: { delayMs: decision.delayMs, consecutive: n, restartCount: c.restartCount } });
      }
      if (!decision.restart || now < decision.atMs) continue;
      try {
        this.engine.records.incrementRestarts(c.id);
        await this.engine.start(c.id);
        this.consecutive.set(c.id, n + 1);
        this.reported.delete(c.id);
        this.onEvent({ type: 'restarted', container: c.name, detail: { restartCount: c.restartCount + 1, afterMs: decision.delayMs } });
        // Once per streak: the fleet hears of a crash loop, not of every turn of it.
        if (n + 1 === CRASH_LOOP_RESTARTS) this.onEvent({ type: 'crash-loop', container: c.name, detail: { restartsInARow: n + 1, exitCode: c.exitCode, oomKilled: c.oomKilled } });
      } catch (err) {
        this.consecutive.set(c.id, n + 1);
        this.onEvent({ type: 'restart-failed', container: c.name, detail: { error: toBerthError(err).message } });
      }
    }
  }
}
