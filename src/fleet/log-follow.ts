import { BerthError } from '../errors.js';
import type { FleetSigningKey } from '../protocol/signing.js';
import { DeviceTopics } from '../protocol/topics.js';
import type { CommandRequest, CommandResult, LogFollowMessage } from '../protocol/types.js';
import { newCommandId, sendCommand } from './cmd.js';
import type { FleetLink } from './link.js';
import { mergeLogLines, type LogLine } from './service/log-lines.js';
import { parseMessage } from './view.js';

/**
 * One viewer's follow of a device service's logs through the command protocol (docs/protocol.md#log-follow):
 * the one code path of the service's dashboard stream (service/log-stream.ts) and of `berth fleet logs -f`
 * / `berth fleet cmd DEVICE logs SERVICE --follow`. It sends one `logs` command with `follow` and hands
 * on what the device publishes on `cmd/<id>/logs`, until close() (which sends `logs-stop`).
 *
 * Kept going without the viewer's help:
 * - the lease (LEASE_S) runs out: a new follow continues it (a follow the viewer forgot ends by itself);
 * - **the agent restarts** (kill -9, upgrade, a reconnect): a follow lives in the agent's process, so the
 *   viewer re-arms it. The device's `status` says so: `online: false` (its last will, or a clean stop) and
 *   `end: agent-stopping` mean wait; a live `online: true` (an agent publishes it on each connect, after
 *   subscribing to its commands) means a new follow, with the viewer's `tail` of history so the lines
 *   written meanwhile are not lost. The viewer, not the agent, re-arms: the agent keeps no follow on
 *   disk that could outlive its viewer, and only the viewer knows the last line it has shown;
 * - each new follow's first lines overlap what was shown: they are merged after the last line shown
 *   (log-lines.ts), so no line is shown twice, and none is lost while at most `tail` were written.
 * An agent from before `follow` rejects the key: then the session asks with plain `logs` every POLL_MS.
 */

const LEASE_S = 600;
const POLL_MS = 3000;
const COMMAND_TIMEOUT_MS = 30_000;

export interface LogFollowDeps {
  readonly link: FleetLink;
  readonly signer: FleetSigningKey;
}

export interface LogFollowRequest {
  readonly device: string;
  readonly service: string;
  /** Lines of history to start with, and to re-arm with after an agent restart (1–10000). */
  readonly tail: number;
}

/** Where a follow's output goes. */
export interface LogFollowSink {
  /** New lines, in order, none repeated. */
  lines(lines: readonly LogLine[]): void;
  /** follow: streaming; poll: the agent predates follow; waiting: the agent is offline or restarting, re-armed when it is back. */
  mode(mode: 'follow' | 'poll' | 'waiting'): void;
  /** The follow ended for good (the container exited; `error`: the device failed or refused to answer); nothing is called after it. */
  end(reason: string, error?: BerthError): void;
}

const failure = (r: CommandResult): string => `${r.status} (${r.result}) ${r.reason ?? ''}`.trim();

export class DeviceLogFollow {
  private readonly topics: DeviceTopics;
  private last: LogLine | undefined;
  private closed = false;
  /** The command id of the follow running on the device, if any. */
  private current: string | undefined;
  /** Stream lines of `current` that came before its answer (kept back: the answer's lines go first). */
  private early: LogLine[] | undefined;
  /** True until `current`'s first lines are relayed: they may repeat lines shown already. */
  private overlapping = false;
  private waiting = false;
  private polling = false;
  private pollTimer: NodeJS.Timeout | undefined;
  /** Opens, one after the other: a re-arm never races the follow it replaces. */
  private chain: Promise<void> = Promise.resolve();
  private readonly handler = (topic: string, payload: Buffer, packet: { retain?: boolean }): void => this.onMessage(topic, payload, packet.retain === true);

  private constructor(private readonly deps: LogFollowDeps, private readonly q: LogFollowRequest, private readonly sink: LogFollowSink, private readonly onError: (err: unknown) => void) {
    this.topics = new DeviceTopics(q.device);
  }

  /**
   * Starts following; the device's `status` must reach `deps.link` (the fleet's subscriptions do). Errors
   * that are not BerthErrors (bugs) go to `onError` as well as ending the follow.
   */
  static start(deps: LogFollowDeps, q: LogFollowRequest, sink: LogFollowSink, onError: (err: unknown) => void = () => undefined): DeviceLogFollow {
    const f = new DeviceLogFollow(deps, q, sink, onError);
    deps.link.client.on('message', f.handler);
    f.enqueue(() => f.open(q.tail));
    return f;
  }

  /** The viewer left: ends the follow on the device (`logs-stop`); resolves once the device answered or gave up. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.pollTimer);
    this.deps.link.client.off('message', this.handler);
    const id = this.current;
    this.current = undefined;
    // Not after the open in flight (up to COMMAND_TIMEOUT_MS): its answer, if it comes, stops it too.
    if (id !== undefined) await this.stop(id);
  }

  private enqueue(step: () => Promise<void>): void {
    this.chain = this.chain.then(step).catch((err: unknown) => this.fail(err));
  }

  private finish(reason: string, error?: BerthError): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.pollTimer);
    this.deps.link.client.off('message', this.handler);
    this.sink.end(reason, error);
  }

  private fail(err: unknown): void {
    if (!(err instanceof BerthError)) this.onError(err);
    const e = err instanceof BerthError ? err : new BerthError('internal', err instanceof Error ? err.message : String(err), { cause: err });
    this.finish(e.message, e);
  }

  /** Sends `got`; `overlaps`: it may repeat lines sent already, which are dropped. */
  private relay(got: readonly LogLine[], overlaps: boolean): void {
    const fresh = this.last === undefined || !overlaps ? [...got] : mergeLogLines([this.last], got).slice(1);
    if (fresh.length === 0 || this.closed) return;
    this.last = fresh[fresh.length - 1];
    this.sink.lines(fresh);
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    if (this.closed) return;
    if (topic === this.topics.topic('status')) {
      const c = parseMessage(topic, payload, retained);
      // A retained copy (a fresh subscription somewhere) says nothing new about the agent process.
      if (c?.kind === 'status' && !c.retained) this.onStatus(c.status.online);
      return;
    }
    if (this.current === undefined || topic !== this.topics.commandLogs(this.current)) return;
    let m: LogFollowMessage;
    try {
      m = JSON.parse(payload.toString('utf8')) as LogFollowMessage;
    } catch {
      return;
    }
    if (Array.isArray(m.lines)) {
      if (this.early !== undefined) this.early.push(...m.lines);
      else {
        this.relay(m.lines, this.overlapping);
        if (m.lines.length > 0) this.overlapping = false;
      }
    }
    if (m.end === undefined) return;
    this.drop();
    if (m.end === 'expired') this.enqueue(() => this.open(Math.min(this.q.tail, 50)));
    else if (m.end === 'agent-stopping') this.wait();
    else if (m.end === 'exited') this.finish('the service\'s container exited');
  }

  private onStatus(online: boolean): void {
    if (this.polling) return; // an agent without follow: each poll asks afresh
    if (!online) return this.wait();
    // A new connection of the agent (a restart, or a reconnect after a network cut): its follow may be gone.
    // A follow still being opened is replaced too: open() drops its answer and stops it if it runs.
    const old = this.current;
    this.drop();
    this.waiting = false;
    if (old !== undefined) void this.stop(old);
    this.enqueue(() => this.rearm());
  }

  private wait(): void {
    if (this.waiting) return;
    this.waiting = true;
    this.sink.mode('waiting');
  }

  /** Forgets the current follow (its lines are no longer relayed). */
  private drop(): void {
    if (this.current !== undefined) void this.deps.link.client.unsubscribeAsync(this.topics.commandLogs(this.current)).catch(() => undefined);
    this.current = undefined;
    this.early = undefined;
  }

  /** After an agent restart: a follow with the whole `tail`, so what was written meanwhile shows; a device gone again means wait again. */
  private async rearm(): Promise<void> {
    if (this.closed || this.current !== undefined) return;
    try {
      await this.open(this.q.tail);
    } catch (err) {
      if (!(err instanceof BerthError) || err.category !== 'network') throw err;
      this.drop();
      this.wait();
    }
  }

  private ask(request: CommandRequest, id?: string): Promise<CommandResult> {
    return sendCommand(this.deps.link, this.q.device, request, COMMAND_TIMEOUT_MS, this.deps.signer, id);
  }

  /** One follow: subscribed to its lines before the command goes out, so none is missed. */
  private async open(tail: number): Promise<void> {
    if (this.closed) return;
    const id = newCommandId();
    this.current = id;
    this.early = [];
    await this.deps.link.client.subscribeAsync(this.topics.commandLogs(id), { qos: 1 });
    let r: CommandResult;
    try {
      r = await this.ask({ action: 'logs', service: this.q.service, tail, follow: LEASE_S }, id);
    } catch (err) {
      if (this.current !== id) return; // replaced (the agent reconnected) or closed meanwhile: not this follow's failure
      throw err;
    }
    const data = r.data as { lines?: LogLine[]; follow?: unknown } | undefined;
    if (this.current !== id) return void (r.status === 'ok' && data?.follow !== undefined && this.stop(id)); // replaced or closed meanwhile
    if (r.status === 'ok' && data?.follow !== undefined) {
      const early = this.early ?? [];
      this.early = undefined;
      this.waiting = false;
      this.sink.mode('follow');
      this.relay(data.lines ?? [], true);
      this.overlapping = early.length === 0;
      if (early.length > 0) this.relay(early, true);
      return;
    }
    this.drop();
    // An agent that predates `follow` rejects the unknown key as invalid (400): ask again and again instead.
    if (r.status === 'rejected' && r.result === 400 && /follow/.test(r.reason ?? '')) return this.poll();
    throw new BerthError(r.status === 'error' && r.result === 404 ? 'notFound' : 'network', `logs of ${this.q.service} on ${this.q.device}: ${failure(r)}`);
  }

  private async poll(): Promise<void> {
    this.polling = true;
    this.sink.mode('poll');
    while (!this.closed) {
      const r = await this.ask({ action: 'logs', service: this.q.service, tail: this.q.tail });
      if (r.status !== 'ok') throw new BerthError('network', `logs of ${this.q.service} on ${this.q.device}: ${failure(r)}`);
      this.relay((r.data as { lines?: LogLine[] } | undefined)?.lines ?? [], true);
      await new Promise<void>((resolve) => (this.pollTimer = setTimeout(resolve, POLL_MS)));
    }
  }

  /** `logs-stop` for follow `id` (404 when it ended already, e.g. with its agent: fine). */
  private async stop(id: string): Promise<void> {
    await this.deps.link.client.unsubscribeAsync(this.topics.commandLogs(id)).catch(() => undefined);
    await this.ask({ action: 'logs-stop', session: id }).catch(() => undefined);
  }
}
