import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BerthError } from '../../errors.js';
import { Forbidden, type Caller } from './http.js';
import { SCOPES, type FleetStore, type Scope, type TokenRecord } from './store.js';

/**
 * API tokens and dashboard sessions. A token is `berth_` + 32 random bytes (base64url): guessing is
 * hopeless, so a plain SHA-256 is the right hash to store (as for GitHub's tokens; a slow password hash
 * buys nothing against 256 bits and would cost every request). A browser logs in with a token and gets
 * a session cookie (HttpOnly, SameSite=Strict, Secure under TLS) plus a CSRF token that every
 * cookie-authenticated write must echo in `X-CSRF-Token`: SameSite=Strict already keeps other sites'
 * requests from carrying the cookie, and the header keeps it so for older browsers and same-site pages.
 */

export const SESSION_COOKIE = 'berth_session';
export const CSRF_HEADER = 'x-csrf-token';
const SESSION_MS = 12 * 3600_000;
/**
 * A token's last use is written at most once a minute: a write per request would double the database
 * work of every API call (the fleet list is polled by dashboards and scripts); a minute is exact enough
 * to tell an unused token from one in use.
 */
export const TOKEN_TOUCH_MS = 60_000;

export const sha256 = (text: string): string => crypto.createHash('sha256').update(text).digest('hex');

/** `what` names the flag or key in the error: a usage error for a flag, invalid input for an API body's key. */
export function parseScope(text: string, what = '--scope'): Scope {
  if (!(SCOPES as readonly string[]).includes(text)) throw new BerthError(what.startsWith('--') ? 'usage' : 'invalid', `${what} takes ${SCOPES.join(', ')}, not "${text}"`);
  return text as Scope;
}

/** Makes and stores a token; returns the secret, shown once and never stored. */
export async function createToken(store: FleetStore, scope: Scope, name?: string, now = Date.now()): Promise<{ id: string; name: string; token: string }> {
  const id = crypto.randomBytes(4).toString('hex');
  const token = `berth_${crypto.randomBytes(32).toString('base64url')}`;
  const tokenName = name ?? `${scope}-${id}`;
  await store.addToken({ id, name: tokenName, scope, hash: sha256(token), createdAt: now });
  return { id, name: tokenName, token };
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const NO_CREDENTIALS = 'no credentials: send Authorization: Bearer TOKEN (made with berth fleet token create), or log in through POST /api/v1/login';

/** Who is asking: a bearer token, else a session cookie; `auth` error when neither is valid. */
export async function authenticate(store: FleetStore, req: IncomingMessage, now = Date.now()): Promise<Caller> {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new BerthError('auth', 'the Authorization header must be "Bearer TOKEN"');
    const t = await store.tokenByHash(sha256(m[1]!));
    if (!t) throw new BerthError('auth', 'the bearer token is not valid');
    await touch(store, t, now);
    return { scope: t.scope, name: t.name, tokenId: t.id, via: 'bearer' };
  }
  const value = cookie(req, SESSION_COOKIE);
  if (value === undefined) throw new BerthError('auth', NO_CREDENTIALS);
  const s = await store.sessionByHash(sha256(value), now);
  if (!s) throw new BerthError('auth', 'the session has expired or was ended: log in again');
  return { scope: s.scope, name: `session of ${s.tokenId}`, tokenId: s.tokenId, csrf: s.csrf, via: 'cookie' };
}

async function touch(store: FleetStore, t: TokenRecord, now: number): Promise<void> {
  if (t.lastUsedAt === undefined || now - t.lastUsedAt >= TOKEN_TOUCH_MS) await store.touchToken(t.id, now);
}

/** A cookie-authenticated write must carry the session's CSRF token. */
export function checkCsrf(caller: Caller, req: IncomingMessage): void {
  if (caller.via !== 'cookie') return;
  const sent = req.headers[CSRF_HEADER];
  const given = Buffer.from(typeof sent === 'string' ? sent : '');
  const expected = Buffer.from(caller.csrf ?? '');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    throw new Forbidden(`a write with the session cookie needs the header X-CSRF-Token (the csrfToken of POST /api/v1/login or GET /api/v1/session)`);
  }
}

/** POST /api/v1/login: a token → a new session; returns the Set-Cookie value and the session's public part. */
export async function login(store: FleetStore, body: unknown, secure: boolean, now = Date.now()): Promise<{ setCookie: string; session: { scope: Scope; csrfToken: string; expires: string } }> {
  const token = typeof body === 'object' && body !== null ? (body as { token?: unknown }).token : undefined;
  if (typeof token !== 'string' || token === '') throw new BerthError('invalid', 'login: "token" is required (a token from berth fleet token create)');
  const t = await store.tokenByHash(sha256(token));
  if (!t) throw new BerthError('auth', 'login: the token is not valid');
  await touch(store, t, now);
  const value = crypto.randomBytes(32).toString('base64url');
  const csrf = crypto.randomBytes(24).toString('base64url');
  const expiresAt = now + SESSION_MS;
  await store.addSession({ hash: sha256(value), tokenId: t.id, scope: t.scope, csrf, expiresAt });
  return {
    setCookie: `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MS / 1000}${secure ? '; Secure' : ''}`,
    session: { scope: t.scope, csrfToken: csrf, expires: new Date(expiresAt).toISOString() },
  };
}

/** POST /api/v1/logout: ends the cookie's session; returns the Set-Cookie that clears it. */
export async function logout(store: FleetStore, req: IncomingMessage): Promise<string> {
  const value = cookie(req, SESSION_COOKIE);
  if (value !== undefined) await store.deleteSession(sha256(value));
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
}
