/**
 * Registry authentication (distribution token spec): WWW-Authenticate parsing, Basic credentials, and
 * Bearer tokens fetched from the challenge's realm and cached per (realm, service, scope).
 */
import { BerthError } from '../../errors.js';
import type { Credentials } from './credentials.js';
import { discard, errorDetail, HttpClient, isLoopbackHost, parseRetryAfter, readBody, RETRY_STATUSES, TransientError, type HttpRequest, type HttpResponse } from './http.js';

export interface Challenge {
  /** Lower-cased: `basic`, `bearer`, … */
  scheme: string;
  /** Parameter names lower-cased, values unquoted: realm, service, scope, error. */
  params: Record<string, string>;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const PARAM = new RegExp(`^(${TOKEN})[ \\t]*=[ \\t]*(?:"((?:[^"\\\\]|\\\\.)*)"|(${TOKEN}))`);
const SCHEME = new RegExp(`^(${TOKEN})(?=[ \\t,]|$)`);
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

/**
 * Parses WWW-Authenticate (RFC 7235): one or several challenges per header, several headers, quoted
 * values with escapes and commas (`scope="repository:a:pull,push"`). Unparseable input ends the parse;
 * what was read so far is returned.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const h of header === undefined ? [] : ([] as string[]).concat(header)) {
    let rest = h;
    let current: Challenge | undefined;
    for (;;) {
      rest = rest.replace(/^[\s,]+/, '');
      if (rest === '') break;
      const param = current ? PARAM.exec(rest) : null;
      if (param) {
        current!.params[param[1]!.toLowerCase()] = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : param[3]!;
        rest = rest.slice(param[0].length);
        continue;
      }
      const scheme = SCHEME.exec(rest);
      if (!scheme) break;
      current = { scheme: scheme[1]!.toLowerCase(), params: {} };
      out.push(current);
      rest = rest.slice(scheme[0].length).replace(/^[ \t]+/, '');
      // token68 credentials (`Negotiate abc==`) are not params; skip them.
      const t68 = TOKEN68.exec(rest);
      if (t68 && !PARAM.test(rest) && /^\s*(,|$)/.test(rest.slice(t68[0].length))) rest = rest.slice(t68[0].length);
    }
  }
  return out;
}

/** The scope a pull of `repository` needs. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** The scope a push to `repository` needs (a push reads too: blob existence checks, mounts). */
export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

export function basicAuthorization(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

interface Token {
  value: string;
  /** Local time (ms) after which the token is not used any more: shortly before it expires. */
  refreshAt: number;
}

/** Token lifetime → how long it is used: until 10 % of it (at most 30 s) is left. */
export function tokenRefreshAt(receivedAt: number, expiresInS: number, issuedAt?: number): number {
  const lifetime = expiresInS * 1000;
  // issued_at is the server's clock: trusted only when it is plausible here, else a skewed clock would
  // keep a token too long or never cache one.
  const base = issuedAt !== undefined && issuedAt <= receivedAt && issuedAt > receivedAt - lifetime ? issuedAt : receivedAt;
  return base + lifetime - Math.min(30_000, lifetime / 10);
}

type Attempt = { header: string | undefined; key?: string; entry?: Promise<Token> };

/**
 * Sends requests for one registry with whatever authentication it asks for. Holds the token cache and what
 * it learnt of the registry's challenge, so later requests authenticate up front. One instance per client.
 */
export class Authenticator {
  private bearer: { realm: string; service: string | undefined } | undefined;
  private basic = false;
  private readonly tokens = new Map<string, Promise<Token>>();

  constructor(
    private readonly http: HttpClient,
    private readonly registry: string,
    private readonly credentials: Credentials | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * One authenticated request (not retried here): up front with a known scheme; on 401, answers the
   * challenge once (a refused cached token is dropped and replaced by a fresh one). Never resolves with
   * a 401: missing, wrong or insufficient credentials are `auth` errors. `scope` undefined is `GET /v2/`.
   */
  async send(req: HttpRequest, scope: string | undefined): Promise<HttpResponse> {
    let attempt = await this.upFront(scope, req);
    for (let answered = false; ; answered = true) {
      const res = await this.http.request({ ...req, headers: { ...req.headers, ...(attempt.header !== undefined && { authorization: attempt.header }) } });
      if (res.status !== 401) return res;
      discard(res.message);
      const challenges = parseChallenges(res.headers['www-authenticate']);
      // A token the registry refused is never offered again.
      if (attempt.key !== undefined && this.tokens.get(attempt.key) === attempt.entry) this.tokens.delete(attempt.key);
      if (answered) throw this.refused(challenges, attempt, req.what);
      attempt = await this.answer(challenges, scope, req, attempt);
    }
  }

  private async upFront(scope: string | undefined, req: HttpRequest): Promise<Attempt> {
    if (this.bearer) return this.token(this.bearer.realm, this.bearer.service, scope, [], req);
    if (this.basic && this.credentials) return { header: basicAuthorization(this.credentials) };
    return { header: undefined };
  }

  private async answer(challenges: Challenge[], scope: string | undefined, req: HttpRequest, previous: Attempt): Promise<Attempt> {
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      this.bearer = { realm: bearer.params.realm!, service: bearer.params.service };
      const extra = bearer.params.scope !== undefined && bearer.params.scope !== scope ? [bearer.params.scope] : [];
      return this.token(this.bearer.realm, this.bearer.service, scope, extra, req);
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!this.credentials) throw this.noCredentials(req.what);
      this.basic = true;
      if (previous.header?.startsWith('Basic ')) throw this.wrongCredentials(req.what);
      return { header: basicAuthorization(this.credentials) };
    }
    throw new BerthError('auth', `${req.what}: ${this.registry} answered 401 without a Basic or Bearer challenge`);
  }

  private refused(challenges: Challenge[], attempt: Attempt, what: string): BerthError {
    if (!this.credentials) return this.noCredentials(what);
    const error = challenges.find((c) => c.scheme === 'bearer')?.params.error;
    if (error === 'insufficient_scope') {
      return new BerthError('auth', `${what}: access denied: the credentials for ${this.registry} do not grant this (or it does not exist)`, {
        hint: `check the name, and that ${this.credentials.username} may pull it`,
      });
    }
    if (attempt.header?.startsWith('Bearer ')) return new BerthError('auth', `${what}: ${this.registry} refused the token its auth server issued${error ? ` (${error})` : ''}`);
    return this.wrongCredentials(what);
  }

  private noCredentials(what: string): BerthError {
    return new BerthError('auth', `${what}: ${this.registry} requires authentication (or the repository does not exist)`, { hint: `berth login ${this.registry}` });
  }

  private wrongCredentials(what: string): BerthError {
    return new BerthError('auth', `${what}: ${this.registry} refused the credentials of ${this.credentials?.username ?? '(none)'}`, {
      hint: `check the user name and password, then berth login ${this.registry}`,
    });
  }

  /** A cached token for the scope, or a fresh one; concurrent requests for one scope share one fetch. */
  private async token(realm: string, service: string | undefined, scope: string | undefined, extra: string[], req: HttpRequest): Promise<Attempt> {
    const key = `${realm}\n${service ?? ''}\n${scope ?? ''}`;
    const cached = this.tokens.get(key);
    if (cached) {
      try {
        const t = await cached;
        if (this.now() < t.refreshAt) return { header: `Bearer ${t.value}`, key, entry: cached };
      } catch (err) {
        // Another request's fetch was cancelled: that is no reason for this one to fail.
        if (!(err instanceof BerthError && err.category === 'cancelled') || req.signal?.aborted) throw err;
      }
      if (this.tokens.get(key) === cached) this.tokens.delete(key);
    }
    const entry = this.fetchToken(realm, service, [...(scope === undefined ? [] : [scope]), ...extra], req);
    this.tokens.set(key, entry);
    entry.catch(() => this.tokens.get(key) === entry && this.tokens.delete(key));
    return { header: `Bearer ${(await entry).value}`, key, entry };
  }

  private async fetchToken(realm: string, service: string | undefined, scopes: string[], req: HttpRequest): Promise<Token> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new BerthError('invalid', `${req.what}: ${this.registry} named an invalid token realm "${realm}"`);
    }
    if (service !== undefined) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (this.credentials) {
      if (url.protocol !== 'https:' && !isLoopbackHost(url.hostname)) {
        throw new BerthError('auth', `${req.what}: refusing to send the credentials for ${this.registry} to ${url.origin} over plain HTTP`);
      }
      url.searchParams.set('account', this.credentials.username);
      headers.authorization = basicAuthorization(this.credentials);
    }
    const what = `${req.what}: token from ${url.host}`;
    const res = await this.http.request({ url, headers, signal: req.signal, what });
    if (res.status !== 200) {
      const detail = await errorDetail(res);
      const message = `${what}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`;
      if (RETRY_STATUSES.has(res.status)) throw new TransientError(message, { retryAfterMs: parseRetryAfter(res.headers['retry-after']) });
      if (res.status === 401 || res.status === 403) throw this.credentials ? this.wrongCredentials(req.what) : this.noCredentials(req.what);
      throw new BerthError(res.status < 500 ? 'auth' : 'network', message);
    }
    const receivedAt = this.now();
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse((await readBody(res.message, 1024 * 1024, what)).toString('utf8')) as typeof body;
    } catch (err) {
      if (err instanceof BerthError) throw err;
      throw new BerthError('invalid', `${what}: the answer is not JSON`, { cause: err });
    }
    const value = typeof body.token === 'string' && body.token !== '' ? body.token : body.access_token;
    if (typeof value !== 'string' || value === '') throw new BerthError('invalid', `${what}: the answer holds no token`);
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    const issuedAt = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : NaN;
    return { value, refreshAt: tokenRefreshAt(receivedAt, expiresIn, Number.isNaN(issuedAt) ? undefined : issuedAt) };
  }
}
