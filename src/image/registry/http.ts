/**
 * A small HTTP(S) layer for the registry client, over node:http/node:https rather than fetch: berth needs
 * a custom CA, TLS verification off for one registry, redirects it follows itself (so Authorization never
 * reaches another host) and streamed bodies with a stall timeout.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { finished, Readable } from 'node:stream';
import tls from 'node:tls';
import { BerthError } from '../../errors.js';

export interface HttpClientOptions {
  /** Verify TLS certificates (default true). `false` applies only to requests to `tlsHost`. */
  tlsVerify?: boolean;
  /** `host[:port]` the relaxed `tlsVerify` applies to: the registry, never a host it redirects to. */
  tlsHost?: string;
  /** Extra CA certificate(s), PEM; trusted in addition to the bundled roots. */
  ca?: string | Buffer;
  /** Time allowed from sending a request to its response headers (default 30 s). */
  headersTimeoutMs?: number;
  /** Time a response body may stay silent before it fails (default 60 s). */
  idleTimeoutMs?: number;
  /** Redirects followed per request (default 5). */
  maxRedirects?: number;
  userAgent?: string;
}

export interface HttpRequest {
  url: URL;
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT';
  /** A request body (pushes: blobs and manifests); sent again on a redirect or an auth retry. */
  body?: Buffer;
  /** Lower-case names. `authorization` is dropped on a redirect to another origin. */
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** What is being fetched, for error messages ("manifest host/repo:tag"). */
  what: string;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  url: URL;
  /** The body: the caller consumes it (readBody, bodyStream) or discards it. */
  message: IncomingMessage;
}

/**
 * A failure worth retrying: a connection that failed before a response, a dropped body, or a 429/5xx.
 * It is a `network` error, so it can be reported as is once the retries are spent.
 */
export class TransientError extends BerthError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number | undefined }) {
    super('network', message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TransientError';
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
export const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
/** Connection failures that a later attempt may not meet. ENOTFOUND and TLS failures are not among them. */
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'ECONNABORTED', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE']);

/** Docker's rule: registries on 127.0.0.0/8, `localhost` and `[::1]` speak plain HTTP, all others HTTPS. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || (net.isIPv4(h) && h.startsWith('127.'));
}

/** `https://host[:port]` (or `http://` on loopback) for a registry API host; a malformed host is `invalid`. */
export function registryBaseUrl(apiHost: string): URL {
  const m = /^([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i.exec(apiHost);
  if (!m || (m[2] !== undefined && Number(m[2]) > 65535)) throw new BerthError('invalid', `invalid registry host "${apiHost}"`);
  return new URL(`${isLoopbackHost(m[1]!) ? 'http' : 'https'}://${apiHost.toLowerCase()}`);
}

/** Seconds or an HTTP-date → milliseconds from `now` (never negative); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (v === undefined || v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined; // "-5", "1.5": not a date either
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function cancelledError(what: string): BerthError {
  return new BerthError('cancelled', `${what}: cancelled`);
}

/** Maps a socket/TLS failure to a (transient where retrying can help) `network` error. */
function connectionError(err: unknown, what: string, url: URL): BerthError {
  if (err instanceof BerthError) return err;
  const e = err as NodeJS.ErrnoException;
  const message = `${what}: ${e.message.includes(url.host) ? '' : `${url.host}: `}${e.message}`;
  if (e.code !== undefined && TRANSIENT_CODES.has(e.code)) return new TransientError(message, { cause: err });
  const tlsProblem = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(e.code ?? '');
  return new BerthError('network', message, {
    cause: err,
    ...(tlsProblem && { hint: `the TLS certificate of ${url.host} is not trusted: pass its CA, or --tls-verify=false for a registry you trust` }),
  });
}

/** Failure of a body already under way: a drop or a stall is transient; cancellation stays cancelled. */
function bodyError(err: unknown, what: string, received: number): BerthError {
  if (err instanceof BerthError) return err;
  return new TransientError(`${what}: connection dropped after ${received} bytes of the body (${(err as Error).message})`, { cause: err });
}

export class HttpClient {
  private readonly opts: HttpClientOptions;
  // Per client, not per module: keep-alive pools die with the client that made them.
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  private readonly httpsAgent = new https.Agent({ keepAlive: true });
  private readonly ca: string[] | undefined;

  constructor(opts: HttpClientOptions = {}) {
    this.opts = opts;
    this.ca = opts.ca === undefined ? undefined : [...tls.rootCertificates, opts.ca.toString()];
  }

  /**
   * Sends a request and follows redirects; resolves with the first non-redirect response, whose body the
   * caller must consume or discard. Rejects with TransientError (retryable connection failures), `network`
   * (other connection failures, too many redirects), `invalid` (bad Location) or `cancelled`.
   */
  async request(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'berth', ...req.headers };
    const max = this.opts.maxRedirects ?? 5;
    for (let hop = 0; ; hop++) {
      const message = await this.once(url, req.method ?? 'GET', headers, req.signal, req.what, req.body);
      const status = message.statusCode ?? 0;
      if (!REDIRECT_STATUSES.has(status)) return { status, headers: message.headers, url, message };
      message.resume();
      if (hop >= max) throw new BerthError('network', `${req.what}: more than ${max} redirects (last to ${url.origin})`);
      const location = message.headers.location;
      let next: URL;
      try {
        next = new URL(location ?? '', url);
      } catch {
        throw new BerthError('invalid', `${req.what}: ${url.host} redirected to an invalid location "${location}"`);
      }
      if (location === undefined || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
        throw new BerthError('invalid', `${req.what}: ${url.host} answered ${status} without a usable Location`);
      }
      if (url.protocol === 'https:' && next.protocol === 'http:' && !isLoopbackHost(next.hostname)) {
        throw new BerthError('invalid', `${req.what}: refusing a redirect from HTTPS to plain HTTP (${next.origin})`);
      }
      // Credentials belong to the registry: a presigned storage URL on another host must not see them.
      if (next.origin !== url.origin) delete headers.authorization;
      url = next;
    }
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private once(url: URL, method: string, headers: Record<string, string>, signal: AbortSignal | undefined, what: string, body?: Buffer): Promise<IncomingMessage> {
    if (signal?.aborted) return Promise.reject(cancelledError(what));
    return new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
      const options: https.RequestOptions = {
        method,
        hostname,
        port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
        path: `${url.pathname}${url.search}`,
        headers: body === undefined ? headers : { ...headers, 'content-length': String(body.length) },
        agent: secure ? this.httpsAgent : this.httpAgent,
      };
      if (secure) {
        options.rejectUnauthorized = !(this.opts.tlsVerify === false && url.host === this.opts.tlsHost?.toLowerCase());
        if (this.ca) options.ca = this.ca;
        if (net.isIP(hostname) === 0) options.servername = hostname;
      }
      const req = (secure ? https : http).request(options);
      let response: IncomingMessage | undefined;
      const onAbort = (): void => {
        const err = cancelledError(what);
        if (response) response.destroy(err);
        else req.destroy(err);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const headersMs = this.opts.headersTimeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`no response within ${headersMs / 1000} s`), { code: 'ETIMEDOUT' }));
      }, headersMs);
      req.on('error', (err) => {
        // After the response the body stream reports failures; the request's late echo is ignored.
        if (response) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(connectionError(err, what, url));
      });
      req.on('response', (res) => {
        clearTimeout(timer);
        response = res;
        const idleMs = this.opts.idleTimeoutMs ?? 60_000;
        // Socket inactivity: a server that stops sending fails the body instead of hanging the pull.
        req.setTimeout(idleMs, () => res.destroy(new TransientError(`${what}: no data from ${url.host} for ${idleMs / 1000} s`)));
        finished(res, () => signal?.removeEventListener('abort', onAbort));
        resolve(res);
      });
      req.end(body);
    });
  }
}

/** Reads a whole (small) body; over `limit` bytes is `invalid`, a drop is a TransientError. */
export function readBody(message: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const declared = Number(message.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    message.destroy();
    return Promise.reject(new BerthError('invalid', `${what}: ${declared} bytes is more than the ${limit} allowed`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    message.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) message.destroy(new BerthError('invalid', `${what}: body is more than the ${limit} bytes allowed`));
      else chunks.push(chunk);
    });
    message.on('end', () => resolve(Buffer.concat(chunks)));
    finished(message, (err) => err && reject(bodyError(err, what, size)));
  });
}

/** Drains a body nobody needs so the connection can be reused. */
export function discard(message: IncomingMessage): void {
  message.on('error', () => undefined).resume();
}

/**
 * A readable over a response body that skips its first `skip` bytes (a server that ignored Range) and
 * fails with BerthError (TransientError for drops and stalls, `cancelled` for aborts) instead of raw
 * socket errors. A body shorter than `skip` is `invalid`.
 */
export function bodyStream(message: IncomingMessage, skip: number, what: string): Readable {
  let toSkip = skip;
  let received = 0;
  const out = new Readable({
    read: () => void message.resume(),
    destroy: (err, cb) => {
      message.destroy();
      cb(err);
    },
  });
  message.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (toSkip > 0) {
      if (chunk.length <= toSkip) {
        toSkip -= chunk.length;
        return;
      }
      chunk = chunk.subarray(toSkip);
      toSkip = 0;
    }
    if (!out.push(chunk)) message.pause();
  });
  message.on('end', () => {
    if (toSkip > 0) out.destroy(new BerthError('invalid', `${what}: the body ended before byte ${skip}`));
    else out.push(null);
  });
  finished(message, (err) => err && !out.destroyed && out.destroy(bodyError(err, what, received)));
  return out;
}

/** The registry's own explanation of an error response (`CODE: message`), read from at most 16 KiB. */
export async function errorDetail(res: HttpResponse): Promise<string> {
  const body = await readBody(res.message, 16 * 1024, 'error body').catch(() => Buffer.alloc(0));
  const text = body.toString('utf8');
  try {
    const errors = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors;
    if (Array.isArray(errors) && errors.length > 0) return errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    // not the registry's JSON: fall through to the raw text
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}
