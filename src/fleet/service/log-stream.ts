import type { ServerResponse } from 'node:http';
import { BerthError } from '../../errors.js';
import type { FleetSigningKey } from '../../protocol/signing.js';
import type { FleetLink } from '../link.js';
import { DeviceLogFollow } from '../log-follow.js';

/**
 * POST /api/v1/devices/{id}/logs/follow: one follow session per viewer, as Server-Sent Events
 * (`lines` {lines}, `mode` {mode: follow|poll|waiting}, `end` {reason}). The follow itself, its lease
 * renewals, its re-arming after the agent restarts and the fallback to polling for an older agent, is
 * ../log-follow.ts (shared with `berth fleet logs -f`); this relays it and ends it (`logs-stop`) when
 * the viewer leaves.
 */

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

/** Runs one viewer's session on `res` until the viewer leaves or the follow ends on the device. */
export async function streamLogs(deps: LogStreamDeps, q: LogStreamRequest, res: ServerResponse): Promise<void> {
  let closed = false;
  const send = (event: string, data: unknown): void => {
    if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.write(': berth log follow\n\n');
  const follow = DeviceLogFollow.start(deps, q, {
    lines: (lines) => send('lines', { lines }),
    mode: (mode) => send('mode', { mode }),
    end: (reason) => {
      send('end', { reason });
      closed = true;
      res.end();
    },
  }, deps.onError);
  // The response's close, not the request's: a request emits 'close' once its body is read.
  res.on('close', () => {
    closed = true;
    void follow.close();
  });
}
