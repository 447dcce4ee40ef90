import { BerthError } from '../errors.js';
import type { LogFollowMessage } from '../protocol/types.js';
import { followLogs } from '../runtime/logs.js';

/**
 * The agent's log follows: `logs` with `follow: N` (docs/protocol.md#log-follow) streams a service's new
 * log lines to `cmd/<id>/logs` for N seconds, so a fleet viewer sends one command per session instead of
 * asking again every few seconds. Each follow ends by itself (its lease runs out, the container exits),
 * by `logs-stop`, or when the agent stops; its last message carries `end` so the fleet knows.
 * Lines written close together go out as one message (BATCH_MS), and a burst is cut into messages of
 * at most MAX_LINES, so a chatty service cannot make one oversized MQTT message.
 */

const BATCH_MS = 200;
const MAX_LINES = 500;
/** Follows at once per agent: each holds a directory watch and a timer; a Pi serves a few viewers, not a crowd. */
export const MAX_FOLLOWS = 8;

export interface LogFollowTarget {
  /** The container's state directory (its logs). */
  readonly stateDir: string;
  /** True once the container is no longer running (the follow ends after reading what is left). */
  readonly exited: () => boolean;
}

interface Follow {
  readonly abort: AbortController;
  reason: NonNullable<LogFollowMessage['end']>;
}

export class LogFollows {
  private readonly follows = new Map<string, Follow>();

  /** `publish(id, message)` sends one message of follow `id` (to `cmd/<id>/logs`). */
  constructor(private readonly publish: (id: string, message: LogFollowMessage) => void, private readonly onError: (id: string, err: unknown) => void) {}

  /** Starts following for `seconds`; returns when it ends at the latest. `conflict` for a reused id, `resource` beyond MAX_FOLLOWS. */
  start(id: string, target: LogFollowTarget, seconds: number, now = Date.now()): { until: string } {
    if (this.follows.has(id)) throw new BerthError('conflict', `log follow ${id} is already running`);
    if (this.follows.size >= MAX_FOLLOWS) throw new BerthError('resource', `${MAX_FOLLOWS} log follows are running already: stop one (logs-stop) or let it end`);
    const f: Follow = { abort: new AbortController(), reason: 'expired' };
    this.follows.set(id, f);
    const lease = setTimeout(() => f.abort.abort(), seconds * 1000);
    void this.run(id, target, f).catch((err: unknown) => this.onError(id, err)).finally(() => {
      clearTimeout(lease);
      this.follows.delete(id);
    });
    return { until: new Date(now + seconds * 1000).toISOString() };
  }

  /** Ends follow `id` (logs-stop); false when none runs under that id. */
  stop(id: string, reason: 'stopped' | 'agent-stopping' = 'stopped'): boolean {
    const f = this.follows.get(id);
    if (!f) return false;
    f.reason = reason;
    f.abort.abort();
    return true;
  }

  /** Ends every follow (the agent is stopping). */
  stopAll(): void {
    for (const id of [...this.follows.keys()]) this.stop(id, 'agent-stopping');
  }

  get size(): number {
    return this.follows.size;
  }

  private async run(id: string, target: LogFollowTarget, f: Follow): Promise<void> {
    let batch: LogFollowMessage['lines'][number][] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      clearTimeout(timer);
      timer = undefined;
      if (batch.length > 0) this.publish(id, { lines: batch });
      batch = [];
    };
    let exited = false;
    try {
      for await (const r of followLogs(target.stateDir, () => (exited = target.exited()), f.abort.signal)) {
        batch.push({ time: r.time, stream: r.stream, text: r.text });
        if (batch.length >= MAX_LINES) flush();
        else timer ??= setTimeout(flush, BATCH_MS);
      }
    } finally {
      clearTimeout(timer);
      const lines = batch;
      batch = [];
      this.publish(id, { lines, end: f.abort.signal.aborted ? f.reason : exited ? 'exited' : f.reason });
    }
  }
}
