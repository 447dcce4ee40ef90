/**
 * The registry client (distribution-spec pulls): manifests and blobs over http.ts, authenticated by
 * auth.ts, with retries and backoff for everything up to the first body byte.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.js';
import { digestOf, parseDigest, verifyBytes } from '../digest.js';
import { MANIFEST_ACCEPT } from '../manifest.js';
import { isValidDigest, registryApiHost } from '../reference.js';
import { Authenticator, pullScope, pushScope } from './auth.js';
import type { Credentials } from './credentials.js';
import { bodyStream, cancelledError, discard, errorDetail, HttpClient, parseRetryAfter, readBody, registryBaseUrl, RETRY_STATUSES, TransientError, type HttpResponse } from './http.js';
import type { RegistryApi } from './types.js';

export interface RetryOptions {
  /** Attempts in all, the first included (default 5). */
  attempts?: number;
  /** Backoff before the 2nd attempt; doubles each time (default 500 ms). */
  baseDelayMs?: number;
  /** Cap for backoff and for a server's Retry-After (default 30 s). */
  maxDelayMs?: number;
}

export interface RetryInfo {
  /** The attempt that just failed (1-based); the next one is attempt + 1. */
  attempt: number;
  /** How long the client waits before the next attempt. */
  delayMs: number;
  reason: string;
}

export interface RegistryClientOptions {
  credentials?: Credentials | undefined;
  /** Verify the registry's TLS certificate (default true). Hosts it redirects to are always verified. */
  tlsVerify?: boolean;
  /** Extra CA certificate(s), PEM, trusted in addition to the bundled roots. */
  ca?: string | Buffer;
  retry?: RetryOptions;
  /** Called before each wait between attempts (the puller logs and publishes these). */
  onRetry?: (info: RetryInfo) => void;
  userAgent?: string;
  /** Response headers timeout and body stall timeout (defaults 30 s and 60 s). */
  timeouts?: { headersMs?: number; idleMs?: number };
}

/** Manifests larger than this are refused (`invalid`): registries cap them at 4 MiB as well. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const TAG = /^[\w][\w.-]{0,127}$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** Exponential backoff with full jitter: uniform in [0, min(max, base · 2^(attempt-1))). */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** The wait after a failed attempt: the server's Retry-After when it gave one, else backoff; capped at max. */
export function retryDelay(attempt: number, retryAfterMs: number | undefined, retry: Required<RetryOptions>, random?: () => number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, retry.maxDelayMs);
  return backoffDelay(attempt, retry.baseDelayMs, retry.maxDelayMs, random);
}

/** Parses `bytes START-END/TOTAL` (TOTAL may be a star); on a 416 the START-END part is a star. */
export function parseContentRange(value: string | undefined): { start: number | undefined; total: number | undefined } | undefined {
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(value?.trim() ?? '');
  if (!m) return undefined;
  return { start: m[1] === undefined ? undefined : Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

export class RegistryClient implements RegistryApi {
  readonly registry: string;
  private readonly base: URL;
  private readonly http: HttpClient;
  private readonly auth: Authenticator;
  private readonly retry: Required<RetryOptions>;
  private readonly onRetry: ((info: RetryInfo) => void) | undefined;

  /** `registry` as references name it: `docker.io` is reached at registry-1.docker.io. */
  constructor(registry: string, opts: RegistryClientOptions = {}) {
    this.registry = registry;
    this.base = registryBaseUrl(registryApiHost(registry));
    this.http = new HttpClient({
      tlsHost: this.base.host,
      ...(opts.tlsVerify !== undefined && { tlsVerify: opts.tlsVerify }),
      ...(opts.ca !== undefined && { ca: opts.ca }),
      ...(opts.userAgent !== undefined && { userAgent: opts.userAgent }),
      ...(opts.timeouts?.headersMs !== undefined && { headersTimeoutMs: opts.timeouts.headersMs }),
      ...(opts.timeouts?.idleMs !== undefined && { idleTimeoutMs: opts.timeouts.idleMs }),
    });
    this.auth = new Authenticator(this.http, registry, opts.credentials);
    this.retry = { attempts: Math.max(1, opts.retry?.attempts ?? 5), baseDelayMs: opts.retry?.baseDelayMs ?? 500, maxDelayMs: opts.retry?.maxDelayMs ?? 30_000 };
    this.onRetry = opts.onRetry;
  }

  async getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<{ bytes: Buffer; contentType: string | undefined; digest: string }> {
    checkRepository(repository);
    const byDigest = isValidDigest(reference);
    if (!byDigest && !TAG.test(reference)) throw new BerthError('invalid', `invalid tag or digest "${reference}"`);
    const what = `manifest ${this.registry}/${repository}${byDigest ? '@' : ':'}${reference}`;
    return this.withRetry(what, signal, async () => {
      const res = await this.send(`manifests/${reference}`, repository, { accept: MANIFEST_ACCEPT.join(', ') }, signal, what);
      if (res.status !== 200) throw await statusError(res, what);
      const bytes = await readBody(res.message, MAX_MANIFEST_BYTES, what);
      const digest = digestOf(bytes);
      if (byDigest) verifyBytes(bytes, reference, undefined, what);
      const header = res.headers['docker-content-digest'];
      if (!byDigest && typeof header === 'string' && isValidDigest(header) && digestOf(bytes, parseDigest(header).algorithm) !== header) {
        throw new BerthError('invalid', `${what}: the body does not match the Docker-Content-Digest ${header} the registry sent`);
      }
      return { bytes, contentType: res.headers['content-type'], digest };
    });
  }

  async openBlob(repository: string, digest: string, offset: number, signal?: AbortSignal): Promise<{ stream: Readable; totalSize: number | undefined }> {
    checkRepository(repository);
    parseDigest(digest);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new BerthError('invalid', `invalid blob offset ${offset}`);
    const what = `blob ${digest} of ${this.registry}/${repository}`;
    return this.withRetry(what, signal, async () => {
      const res = await this.send(`blobs/${digest}`, repository, offset > 0 ? { range: `bytes=${offset}-` } : {}, signal, what);
      const range = parseContentRange(res.headers['content-range']);
      const length = Number(res.headers['content-length']);
      const contentLength = res.headers['content-length'] !== undefined && Number.isSafeInteger(length) ? length : undefined;
      if (res.status === 206) {
        if (range?.start !== offset) {
          res.message.destroy();
          throw new BerthError('invalid', `${what}: asked for bytes from ${offset}, got Content-Range ${res.headers['content-range'] ?? '(none)'}`);
        }
        const totalSize = range.total ?? (contentLength === undefined ? undefined : offset + contentLength);
        return { stream: bodyStream(res.message, 0, what), totalSize };
      }
      if (res.status === 200) {
        const totalSize = contentLength;
        if (totalSize !== undefined && offset > totalSize) {
          res.message.destroy();
          throw new BerthError('invalid', `${what}: offset ${offset} is beyond the end of the blob (${totalSize} bytes)`);
        }
        // The server ignored Range: skip what the caller already has.
        return { stream: bodyStream(res.message, offset, what), totalSize };
      }
      if (res.status === 416) {
        discard(res.message);
        const size = range?.total === undefined ? '' : ` (the blob has ${range.total} bytes)`;
        throw new BerthError('invalid', `${what}: the registry cannot serve it from byte ${offset}${size}: range not satisfiable`);
      }
      throw await statusError(res, what);
    });
  }

  /** `GET /v2/` through the auth flow: resolves when the registry accepts us (anonymously or with the credentials). */
  async ping(signal?: AbortSignal): Promise<void> {
    const what = `API version check of ${this.registry}`;
    await this.withRetry(what, signal, async () => {
      const res = await this.auth.send({ url: new URL('/v2/', this.base), signal, what }, undefined);
      if (res.status !== 200) throw await statusError(res, what);
      discard(res.message);
    });
  }

  /**
   * One request with push scope (src/image/registry/push.ts builds uploads from these), retried like
   * pulls up to the first body byte. `target` is a path under /v2/<repository>/ or an absolute URL (an
   * upload's Location). The caller reads or discards the response body and judges its status.
   */
  async pushRequest(repository: string, target: string | URL, init: { method: 'GET' | 'HEAD' | 'POST' | 'PUT'; headers?: Record<string, string>; body?: Buffer }, what: string, signal?: AbortSignal): Promise<HttpResponse> {
    checkRepository(repository);
    const url = typeof target === 'string' ? new URL(`/v2/${repository}/${target}`, this.base) : target;
    if (url.origin !== this.base.origin) throw new BerthError('invalid', `${what}: ${this.registry} sent an upload location on another host (${url.origin})`);
    return this.withRetry(what, signal, async () => {
      const res = await this.auth.send({ url, method: init.method, headers: init.headers ?? {}, ...(init.body && { body: init.body }), signal, what }, pushScope(repository));
      if (RETRY_STATUSES.has(res.status)) throw await statusError(res, what);
      return res;
    });
  }

  /** The error a push step answers for an unexpected status (see statusError). */
  static async statusError(res: HttpResponse, what: string): Promise<BerthError> {
    return statusError(res, what);
  }

  /** Drops idle keep-alive connections (the client stays usable). */
  close(): void {
    this.http.close();
  }

  private send(path: string, repository: string, headers: Record<string, string>, signal: AbortSignal | undefined, what: string): Promise<HttpResponse> {
    return this.auth.send({ url: new URL(`/v2/${repository}/${path}`, this.base), headers, signal, what }, pullScope(repository));
  }

  /** Runs `attempt` until it succeeds, fails with something other than a TransientError, or attempts run out. */
  private async withRetry<T>(what: string, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      if (signal?.aborted) throw cancelledError(what);
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
        if (n >= this.retry.attempts) {
          throw n === 1 ? err : new BerthError('network', `${err.message} (gave up after ${n} attempts)`, { cause: err });
        }
        const delayMs = retryDelay(n, err.retryAfterMs, this.retry);
        this.onRetry?.({ attempt: n, delayMs, reason: err.message });
        try {
          await sleep(delayMs, undefined, signal ? { signal } : {});
        } catch {
          throw cancelledError(what);
        }
      }
    }
  }
}

function checkRepository(repository: string): void {
  if (!REPOSITORY.test(repository) || repository.length > 255) throw new BerthError('invalid', `invalid repository name "${repository}"`);
}

/** The error for an unexpected status; 429 and 5xx come back as TransientError with the Retry-After. */
async function statusError(res: HttpResponse, what: string): Promise<BerthError> {
  const detail = await errorDetail(res);
  const message = `${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`;
  if (RETRY_STATUSES.has(res.status)) return new TransientError(message, { retryAfterMs: parseRetryAfter(res.headers['retry-after']) });
  if (res.status === 404) return new BerthError('notFound', `${what}: not found${detail ? ` (${detail})` : ''}`);
  if (res.status === 401 || res.status === 403) return new BerthError('auth', `${what}: access denied (HTTP ${res.status}${detail ? `, ${detail}` : ''})`);
  return new BerthError(res.status >= 400 && res.status < 500 ? 'invalid' : 'network', message);
}

/**
 * Verifies credentials the way `docker login` does: `GET /v2/` through the auth flow. Throws `auth` when
 * the registry (or its token server) refuses them, `network` when it cannot be reached.
 */
export async function checkLogin(registry: string, credentials: Credentials, opts: Omit<RegistryClientOptions, 'credentials'> & { signal?: AbortSignal } = {}): Promise<void> {
  const { signal, ...rest } = opts;
  const client = new RegistryClient(registry, { ...rest, credentials });
  try {
    await client.ping(signal);
  } finally {
    client.close();
  }
}
