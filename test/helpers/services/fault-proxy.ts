// An HTTP reverse proxy in front of a registry that injects network faults per request, so a
// registry client can be tested against drops, corruption, throttling, redirects and Range quirks.
import { randomUUID } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FaultRule {
  /** Matches when all given selectors match. */
  method?: string;
  path?: RegExp;
  /** Which listener: the proxy itself or the "other host" that redirected requests land on. */
  listener?: 'main' | 'other';
  /** 1-based occurrence(s) among the requests this rule's selectors matched; default every one. */
  nth?: number | number[];
  delayMs?: number;
  /** Answer this status (with a registry-style JSON error) instead of forwarding. */
  status?: number;
  retryAfter?: number;
  /** 307 to the same path on the second listener (127.0.0.2), like a registry redirecting to S3. */
  redirectTo?: 'other-host';
  /** Remove the client's Range (and If-Range) so upstream answers 200 with the full body. */
  ignoreRange?: boolean;
  /** Forward headers and the first N body bytes, then destroy the socket. */
  dropAfterBytes?: number;
  /** Flip the bits of one body byte (default offset 0). */
  corrupt?: boolean | number;
}

export interface ProxiedRequest {
  listener: 'main' | 'other';
  method: string;
  /** Path with query, as the client sent it. */
  path: string;
  /** The client's request headers, lower-cased (e.g. `range`, `authorization`). */
  headers: IncomingHttpHeaders;
  /** Response status sent to the client (0 until known). */
  status: number;
  /** Response body bytes sent to the client. */
  bytesSent: number;
  /** Names of the fault fields applied, e.g. ['dropAfterBytes']. */
  faults: string[];
  /** The connection was cut on purpose (dropAfterBytes) or the upstream failed mid-body. */
  aborted: boolean;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  host: string;
  port: number;
  /** http://127.0.0.2:PORT2: the "different host" (undefined with otherHost: false). */
  otherUrl: string | undefined;
  requests: ProxiedRequest[];
  /** Replaces all rules and resets their occurrence counters. */
  setFaults(rules: FaultRule[]): void;
  stop(): Promise<void>;
}

// Hop-by-hop headers are per connection; Node re-frames the body itself.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);
const EFFECTS = ['delayMs', 'status', 'retryAfter', 'redirectTo', 'ignoreRange', 'dropAfterBytes', 'corrupt'] as const;

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP.has(k)));
}

async function listen(server: Server, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
  return `http://${host}:${(server.address() as AddressInfo).port}`;
}

export async function startFaultProxy(target: string, opts: { otherHost?: boolean } = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const requests: ProxiedRequest[] = [];
  let rules: { rule: FaultRule; seen: number }[] = [];
  // Redirect ids → the Authorization of the redirected request: the "presigned URL" carries the
  // credentials, so the other host must not get (and refuses) an Authorization header.
  const presigned = new Map<string, string | undefined>();
  let url = '';
  let otherUrl: string | undefined;

  const effects = (listener: 'main' | 'other', req: IncomingMessage): FaultRule => {
    const merged: FaultRule = {};
    const path = req.url ?? '/';
    for (const r of rules) {
      const { rule } = r;
      if (rule.method && rule.method.toUpperCase() !== req.method) continue;
      if (rule.path && !rule.path.test(path)) continue;
      if (rule.listener && rule.listener !== listener) continue;
      r.seen += 1;
      const nth = rule.nth === undefined ? undefined : ([] as number[]).concat(rule.nth);
      if (nth && !nth.includes(r.seen)) continue;
      Object.assign(merged, ...EFFECTS.filter((k) => rule[k] !== undefined).map((k) => ({ [k]: rule[k] })));
    }
    return merged;
  };

  const handle = async (listener: 'main' | 'other', req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rec: ProxiedRequest = { listener, method: req.method ?? '', path: req.url ?? '/', headers: { ...req.headers }, status: 0, bytesSent: 0, faults: [], aborted: false };
    requests.push(rec);
    const f = effects(listener, req);
    rec.faults = EFFECTS.filter((k) => f[k] !== undefined && f[k] !== false);
    const reply = (status: number, body: string, headers: OutgoingHttpHeaders = {}): void => {
      req.resume();
      rec.status = status;
      rec.bytesSent = Buffer.byteLength(body);
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
    };
    if (f.delayMs) await sleep(f.delayMs);
    if (f.status !== undefined) {
      const code = f.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE';
      const headers = f.retryAfter === undefined ? {} : { 'retry-after': String(f.retryAfter) };
      return reply(f.status, JSON.stringify({ errors: [{ code, message: `injected ${f.status}` }] }), headers);
    }
    const headers = endToEnd(req.headers);
    let path = rec.path;
    if (listener === 'main' && f.redirectTo === 'other-host' && otherUrl) {
      const id = randomUUID();
      presigned.set(id, req.headers.authorization);
      const sep = path.includes('?') ? '&' : '?';
      return reply(307, '', { location: `${otherUrl}${path}${sep}X-Berth-Signature=${id}`, 'content-length': '0' });
    }
    if (listener === 'other') {
      // Like S3: a presigned URL plus an Authorization header is a 400, never a download.
      const u = new URL(path, 'http://x');
      const id = u.searchParams.get('X-Berth-Signature') ?? '';
      if (req.headers.authorization !== undefined) {
        return reply(400, '<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>', { 'content-type': 'application/xml' });
      }
      if (!presigned.has(id)) return reply(403, '<Error><Code>AccessDenied</Code></Error>', { 'content-type': 'application/xml' });
      const auth = presigned.get(id);
      if (auth !== undefined) headers.authorization = auth;
      u.searchParams.delete('X-Berth-Signature');
      path = `${u.pathname}${u.search}`;
    }
    if (f.ignoreRange) {
      delete headers.range;
      delete headers['if-range'];
    }
    // A proxy that does not preserve Host: the registry builds absolute Locations from it, which the
    // response rewrite below maps back onto the proxy.
    headers.host = upstream.host;

    const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers, agent }, (ures) => {
      const out = endToEnd(ures.headers);
      const loc = ures.headers.location;
      if (loc?.startsWith(upstream.origin)) out.location = `${url}${loc.slice(upstream.origin.length)}`;
      rec.status = ures.statusCode ?? 502;
      res.writeHead(rec.status, out);
      // A client that hangs up must not leave the upstream response paused on a dead socket.
      res.on('close', () => res.writableFinished || ures.destroy());
      let corruptAt = f.corrupt === true ? 0 : typeof f.corrupt === 'number' ? f.corrupt : -1;
      const drop = f.dropAfterBytes;
      ures.on('data', (chunk: Buffer) => {
        if (rec.aborted) return;
        if (corruptAt >= 0 && corruptAt < chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[corruptAt] = (chunk[corruptAt] ?? 0) ^ 0xff;
          corruptAt = -1;
        } else if (corruptAt >= 0) corruptAt -= chunk.length;
        if (drop !== undefined && rec.bytesSent + chunk.length >= drop) {
          const head = chunk.subarray(0, drop - rec.bytesSent);
          rec.bytesSent += head.length;
          rec.aborted = true;
          ures.destroy();
          res.flushHeaders();
          // Destroy only once the partial body reached the kernel, so the client really sees N bytes.
          res.write(head, () => res.socket?.destroy());
          return;
        }
        rec.bytesSent += chunk.length;
        if (!res.write(chunk)) {
          ures.pause();
          res.once('drain', () => ures.resume());
        }
      });
      ures.on('end', () => rec.aborted || res.end());
      ures.on('error', () => {
        rec.aborted = true;
        res.socket?.destroy();
      });
    });
    up.on('error', (err) => {
      if (res.headersSent) {
        rec.aborted = true;
        res.socket?.destroy();
      } else reply(502, JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `upstream: ${err.message}` }] }));
    });
    req.pipe(up);
  };

  const serve = (listener: 'main' | 'other'): Server =>
    createServer((req, res) => {
      handle(listener, req, res).catch(() => res.socket?.destroy());
    });
  const main = serve('main');
  url = await listen(main, '127.0.0.1');
  const other = opts.otherHost === false ? undefined : serve('other');
  if (other) otherUrl = await listen(other, '127.0.0.2');
  const { hostname, port } = new URL(url);

  return {
    url,
    host: `${hostname}:${port}`,
    port: Number(port),
    otherUrl,
    requests,
    setFaults: (next) => {
      rules = next.map((rule) => ({ rule, seen: 0 }));
    },
    stop: async () => {
      for (const s of [main, other]) {
        if (!s?.listening) continue;
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
      agent.destroy();
    },
  };
}
