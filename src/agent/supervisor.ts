import { toBerthError } from '../errors.js';
import { Wake } from '../host/wake.js';
import type { ContainerEngine } from '../runtime/engine-api.js';
import { decideRestart, DEFAULT_BACKOFF, type BackoffConfig } from './restart-policy.js';

/** Restarts in a row (none lasting `healthyAfterMs`) that make a crash loop. */
export const CRASH_LOOP_RESTARTS = 5;

const FAILED_START_RETRY_MS = 500;

export interface SupervisorEvent {
  readonly type: 'adopted' | 'exited' | 'restart-scheduled' | 'restarted' | 'restart-failed' | 'crash-loop' | 'backoff-reset';
  readonly container: string;
  readonly detail: Record<string, unknown>;
}

/**
 * Keeps containers to their restart policies. It owns no container: each runs under its own monitor, so
 * the supervisor can be killed and restarted at will. On start it re-adopts what is running (the engine
 * checks each monitor's pid against its start time) and carries on with the restart counts on record.
 * It looks at the containers when the engine reports an event (an exit, a start, a removal…) and when
 * a restart or a backoff reset it scheduled falls due; in between it sleeps.
 */
export class Supervisor {
  /** Restarts in a row per container id; reset after `healthyAfterMs` of uptime. */
  private readonly consecutive = new Map<string, number>();
  private readonly reported = new Set<string>();

  constructor(
    private readonly engine: ContainerEngine,
    private readonly onEvent: (e: SupervisorEvent) => void,
    private readonly backoff: BackoffConfig = DEFAULT_BACKOFF,
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
    const wake = new Wake();
    // Subscribed before the first pass: a change during it wakes the loop at once.
    const unsubscribe = this.engine.subscribe(() => wake.wake());
    try {
      while (!signal.aborted) {
        const next = await this.tick();
        await wake.wait(next === undefined ? undefined : next - Date.now(), signal);
      }
    } finally {
      unsubscribe();
    }
  }

  /**
   * One pass over all containers: report exits, reset healthy backoffs, restart what is due. Returns
   * when the next scheduled thing falls due (a restart's backoff, a backoff reset), if any.
   */
  async tick(now = Date.now()): Promise<number | undefined> {
    let next: number | undefined;
    const at = (t: number): void => {
      next = next === undefined ? t : Math.min(next, t);
    };
    for (const c of this.engine.list()) {
      if (c.state === 'running') {
        this.reported.delete(c.id);
        if ((this.consecutive.get(c.id) ?? 0) > 0) {
          const resetAt = (c.startedAt ?? now) + this.backoff.healthyAfterMs;
          if (now < resetAt) {
            at(resetAt);
          } else {
            this.consecutive.set(c.id, 0);
            this.onEvent({ type: 'backoff-reset', container: c.name, detail: { upMs: now - (c.startedAt ?? now) } });
          }
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
      if (!decision.restart) continue;
      if (now < decision.atMs) {
        at(decision.atMs);
        continue;
      }
      try {
        await this.engine.start(c.id, { countRestart: true });
        this.consecutive.set(c.id, n + 1);
        this.reported.delete(c.id);
        this.onEvent({ type: 'restarted', container: c.name, detail: { restartCount: c.restartCount + 1, afterMs: decision.delayMs } });
        // Once per streak: the fleet hears of a crash loop, not of every turn of it.
        if (n + 1 === CRASH_LOOP_RESTARTS) this.onEvent({ type: 'crash-loop', container: c.name, detail: { restartsInARow: n + 1, exitCode: c.exitCode, oomKilled: c.oomKilled } });
      } catch (err) {
        // Removed while it was being restarted (a deploy replacing it, `berth rm`): nothing to restart, and
        // no reason to end the pass (seen under load: the agent died of "no such container" here).
        const current = this.engine.list().find((r) => r.id === c.id);
        if (current === undefined) {
          this.consecutive.delete(c.id);
          this.reported.delete(c.id);
          continue;
        }
        this.consecutive.set(c.id, n + 1);
        this.onEvent({ type: 'restart-failed', container: c.name, detail: { error: toBerthError(err).message } });
        // A failed start changes nothing the engine reports: try again after the next backoff, and
        // never sooner than FAILED_START_RETRY_MS (the backoff counts from the exit, long past by now).
        const retry = decideRestart(current, n + 1, this.backoff);
        if (retry.restart) at(Math.max(retry.atMs, Date.now() + FAILED_START_RETRY_MS));
      }
    }
    return next;
  }
}
