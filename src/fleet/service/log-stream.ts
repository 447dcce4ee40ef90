import type { ServerResponse } from 'node:http';
import { BerthError } from '../../errors.js';
import type { FleetSigningKey } from '../../protocol/signing.js';
import { DeviceTopics } from '../../protocol/topics.js';
import type { CommandResult, LogFollowMessage } from '../../protocol/types.js';
import { newCommandId, sendCommand } from '../cmd.js';
import type { FleetLink } from '../link.js';
import { mergeLogLines, type LogLine } from './log-lines.js';

/**
 * POST /api/v1/devices/{id}/logs/follow: one follow session per viewer, as Server-Sent Events
 * (`lines` {lines}, `mode` {mode: follow|poll}, `end` {reason}). The service sends the device one
 * `logs` command with `follow` (docs/protocol.md#log-follow) and relays what the device publishes on
 * `cmd/<id>/logs`; when the viewer leaves it sends `logs-stop`. The lease (LEASE_S) bounds a follow the
 * service forgot (a crash): when it runs out while the viewer still watches, one new follow continues it,
 * its first lines merged after the last one sent. An agent from before `follow` rejects the key: then
 * the session asks with plain `logs` every POLL_MS instead, as the dashboard used to, and says so (mode poll).
 */

const LEASE_S = 600;
const POLL_MS = 3000;
const COMMAND_TIMEOUT_MS = 30_000;

export interface LogStreamDeps {
  readonly link: FleetLink;
  readonly signer: FleetSigningKey;
  readonly onError: (err: unknown) => void;
}

export interface LogStreamRequest {
  readonly device: string;
  readonly service: string;
  readonly tail: number;
}

/** Checks the body of the request: `service` required, `tail` 1–10000 (default 200). */
export function parseLogStreamBody(device: string, body: unknown): LogStreamRequest {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { service?: unknown; tail?: unknown };
  if (typeof b.service !== 'string' || b.service === '') throw new BerthError('invalid', 'log follow: "service" is required');
  const tail = b.tail ?? 200;
  if (!Number.isSafeInteger(tail) || (tail as number) < 1 || (tail as number) > 10_000) throw new BerthError('invalid', 'log follow: "tail" must be an integer in [1, 10000]');
  return { device, service: b.service, tail: tail as number };
}

const failure = (r: CommandResult): string => `${r.status} (${r.result}) ${r.reason ?? ''}`.trim();

/** Runs one viewer's session on `res` until the viewer leaves or the follow ends on the device. */
export async function streamLogs(deps: LogStreamDeps, q: LogStreamRequest, res: ServerResponse): Promise<void> {
  const topics = new DeviceTopics(q.device);
  const client = deps.link.client;
  let last: LogLine | undefined;
  let closed = false;
  let current: string | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  const send = (event: string, data: unknown): void => {
    if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  /** Sends `got`; `overlaps`: it may repeat lines sent already (a renewed follow's or a poll's tail), which are dropped. */
  const relay = (got: readonly LogLine[], overlaps: boolean): void => {
    const fresh = last === undefined || !overlaps ? [...got] : mergeLogLines([last], got).slice(1);
    if (fresh.length === 0) return;
    last = fresh[fresh.length - 1];
    send('lines', { lines: fresh });
  };
  const finish = (reason: string): void => {
    send('end', { reason });
    closed = true;
    res.end();
  };
  const onMessage = (topic: string, payload: Buffer): void => {
    if (current === undefined || topic !== topics.commandLogs(current)) return;
    let m: LogFollowMessage;
    try {
      m = JSON.parse(payload.toString('utf8')) as LogFollowMessage;
    } catch {
      return;
    }
    if (Array.isArray(m.lines)) relay(m.lines, false);
    if (m.end === undefined) return;
    void client.unsubscribeAsync(topics.commandLogs(current)).catch(() => undefined);
    current = undefined;
    if (m.end === 'expired' && !closed) void open(Math.min(q.tail, 50)).catch(fail);
    else if (m.end !== 'stopped') finish(m.end === 'exited' ? 'the service\'s container exited' : 'the agent stopped');
  };
  const fail = (err: unknown): void => {
    if (!(err instanceof BerthError)) deps.onError(err);
    finish(err instanceof Error ? err.message : String(err));
  };
  const ask = (request: Parameters<typeof sendCommand>[2], id?: string): Promise<CommandResult> => sendCommand(deps.link, q.device, request, COMMAND_TIMEOUT_MS, deps.signer, id);

  /** One follow: subscribed to its lines before the command goes out, so none is missed. */
  const open = async (tail: number): Promise<void> => {
    const id = newCommandId();
    current = id;
    await client.subscribeAsync(topics.commandLogs(id), { qos: 1 });
    const r = await ask({ action: 'logs', service: q.service, tail, follow: LEASE_S }, id);
    const data = r.data as { lines?: LogLine[]; follow?: unknown } | undefined;
    if (r.status === 'ok' && data?.follow !== undefined) {
      send('mode', { mode: 'follow' });
      relay(data.lines ?? [], true);
      if (closed) stop(id);
      return;
    }
    current = undefined;
    await client.unsubscribeAsync(topics.commandLogs(id)).catch(() => undefined);
    // An agent that predates `follow` rejects the unknown key as invalid (400): ask again and again instead.
    if (r.status === 'rejected' && r.result === 400 && /follow/.test(r.reason ?? '')) return poll();
    throw new BerthError('network', `logs of ${q.service} on ${q.device}: ${failure(r)}`);
  };
  const poll = async (): Promise<void> => {
    send('mode', { mode: 'poll' });
    while (!closed) {
      const r = await ask({ action: 'logs', service: q.service, tail: q.tail });
      if (r.status !== 'ok') throw new BerthError('network', `logs of ${q.service} on ${q.device}: ${failure(r)}`);
      relay((r.data as { lines?: LogLine[] } | undefined)?.lines ?? [], true);
      await new Promise<void>((resolve) => (pollTimer = setTimeout(resolve, POLL_MS)));
    }
  };
  const stop = (id: string): void => {
    void ask({ action: 'logs-stop', session: id }).catch(() => undefined);
    void client.unsubscribeAsync(topics.commandLogs(id)).catch(() => undefined);
  };

  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': berth log follow\n\n');
  client.on('message', onMessage);
  // The response's close, not the request's: a request emits 'close' once its body is read.
  res.on('close', () => {
    closed = true;
    clearTimeout(pollTimer);
    client.off('message', onMessage);
    if (current !== undefined) stop(current);
    current = undefined;
  });
  await open(q.tail).catch(fail);
}
