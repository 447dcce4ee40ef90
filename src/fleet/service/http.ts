import type { IncomingMessage, ServerResponse } from 'node:http';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { BerthError, ERROR_CATEGORIES, toBerthError } from '../../errors.js';
import { traced } from './slice-trace.js';
import type { Scope } from './store.js';

/**
 * The service's HTTP plumbing over node:http: a route table, JSON in and out, errors as
 * `{"error": {code, message, hint}}` with the HTTP status of the error category's result code
 * (docs/errors.md). node:http rather than a framework: the API is a dozen routes, the live stream
 * needs the raw response anyway, and a framework would add a dependency tree to audit for what is
 * ~100 lines here (routing, body limits, error mapping).
 */

/** Refused for lack of right, not of identity: 403 (a too-small scope, a missing CSRF token). */
export class Forbidden extends Error {}

export interface Caller {
  readonly scope: Scope;
  /** The token's name (the creator of a rollout, in its record). */
  readonly name: string;
  readonly tokenId: string;
  /** Cookie sessions: the CSRF token writes must echo. */
  readonly csrf?: string;
  readonly via: 'bearer' | 'cookie';
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  readonly caller: Caller;
  /** The parsed JSON body (read on demand, at most MAX_BODY bytes). */
  body(): Promise<unknown>;
}

/** A route's answer: a JSON value (200 unless `status`), or `undefined` when the handler wrote the response itself. */
export type RouteResult = { readonly status?: number; readonly json?: unknown; readonly headers?: Record<string, string> } | undefined;

export interface Route {
  readonly method: 'GET' | 'POST';
  /** `/api/v1/devices/:id`: `:name` matches one path segment. */
  readonly path: string;
  /** The smallest scope allowed (read ⊂ deploy ⊂ admin). */
  readonly scope: Scope;
  readonly handler: (ctx: RequestContext) => Promise<RouteResult>;
}

const MAX_BODY = 8 << 20;
const RANK: Readonly<Record<Scope, number>> = { read: 0, deploy: 1, admin: 2 };

export function scopeAllows(has: Scope, needs: Scope): boolean {
  return RANK[has] >= RANK[needs];
}

export interface CompiledRoute extends Route {
  readonly match: (path: string) => Record<string, string> | undefined;
}

export function compileRoutes(routes: readonly Route[]): CompiledRoute[] {
  return routes.map((r) => {
    const names: string[] = [];
    const re = new RegExp(`^${r.path.replace(/:([a-zA-Z]+)/g, (_m, n: string) => (names.push(n), '([^/]+)'))}$`);
    return {
      ...r,
      match: (p: string) => {
        const m = re.exec(p);
        if (!m) return undefined;
        try {
          return Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
        } catch {
          return undefined;
        }
      },
    };
  });
}

export function readJsonBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new BerthError('invalid', `the request body is over ${MAX_BODY >> 20} MiB`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (size === 0) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(new BerthError('invalid', `the request body is not JSON: ${(err as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  traced('sendJson', () => {
    // Encoded once: Buffer.byteLength and then end(text) went over the text twice.
    const bytes = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': bytes.length, 'cache-control': 'no-store', ...headers });
    res.end(bytes);
  });
}

/** Items stringified per turn of the event loop by sendJsonList. */
const LIST_CHUNK = 500;

/**
 * `{"<key>": items}` as sendJson would send it, for answers too large for one turn of the event loop
 * (the whole device list: at 10,000 devices its stringify held the loop for tens of ms, and every page
 * asked meanwhile waited): written a chunk of items at a time, chunked transfer encoding, other work
 * served between chunks.
 */
export async function sendJsonList(res: ServerResponse, status: number, key: string, items: readonly unknown[]): Promise<void> {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  let sep = `{${JSON.stringify(key)}:[`;
  for (let i = 0; i < items.length; i += LIST_CHUNK) {
    if (i > 0) await yieldToIo();
    if (res.destroyed) return;
    const part = traced('sendJsonList', () => JSON.stringify(items.slice(i, i + LIST_CHUNK)));
    res.write(sep + part.slice(1, -1));
    sep = ',';
  }
  res.end(items.length === 0 ? `${sep}]}` : ']}');
}

/** The error as JSON with its HTTP status; internal errors keep their detail out of the response. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof Forbidden) return sendJson(res, 403, { error: { code: 'forbidden', message: err.message } });
  const e = toBerthError(err);
  const status = e.category === 'internal' ? 500 : ERROR_CATEGORIES[e.category].result;
  const message = e.category === 'internal' ? 'internal error (see the service log)' : e.message;
  sendJson(res, status < 400 || status > 599 ? 500 : status, { error: { code: e.category, message, ...(e.hint !== undefined && { hint: e.hint }) } });
}

/** A query parameter as an integer within [min, max], else `fallback`; `invalid` naming it when malformed. */
export function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new BerthError('invalid', `query parameter "${name}" must be an integer in [${min}, ${max}], not "${v}"`);
  return n;
}
