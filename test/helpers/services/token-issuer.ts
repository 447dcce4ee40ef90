// A Docker-registry token server (https://distribution.github.io/distribution/spec/auth/token/) for
// tests: Basic credentials in, a signed JWT with the granted repository actions out.
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findBinary } from './process.js';

export interface Access {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenIssuerOptions {
  /** user → password. Empty: no accounts, every (anonymous) request gets what it asks for. */
  users: Record<string, string>;
  /** The registry's service name; becomes the token's `aud`. */
  service: string;
  /** `iss` claim (default "berth-test-issuer"); the registry config must name the same. */
  issuer?: string;
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
  /** Requests without credentials get `pull` (only) when users is non-empty. */
  allowAnonymousPull?: boolean;
  /**
   * How the JWT header names its signing key. Registry 2.8 accepts both: `x5c` (the cert, verified
   * against rootcertbundle) and `kid` (libtrust fingerprint of a key in rootcertbundle). Default x5c.
   */
  keyId?: 'x5c' | 'kid';
  /** Overrides the default policy: the actions `user` (undefined = anonymous) gets on `name`. */
  authorize?: (user: string | undefined, name: string, requested: string[]) => string[];
}

export interface TokenRequest {
  method: string;
  path: string;
  query: Record<string, string[]>;
  /** An Authorization header was sent. */
  authorization: boolean;
  /** Authenticated user; undefined for anonymous and failed logins. */
  user: string | undefined;
  status: number;
  granted: Access[];
}

export interface TokenIssuer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** `${url}/token`: the registry's `realm`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM file with the self-signed cert for the registry's `rootcertbundle`. */
  rootCertBundle: string;
  requests: TokenRequest[];
  /** Lifetime of later tokens (negative: already expired) and the `expires_in` reported (default: the same). */
  setExpiresIn(seconds: number, reported?: number): void;
  /** Answer every later /token request with this status (e.g. 503); undefined to heal. */
  failWith(status: number | undefined): void;
  /** Signs a token directly; claims may be overridden (e.g. `aud`, `exp`). */
  sign(access: Access[], claims?: Record<string, unknown>): string;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const dirs = new Set<string>();
process.once('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** libtrust KeyID: SHA-256 of the DER SPKI, first 240 bits, base32, "ABCD:EFGH:..." (12 groups). */
export function libtrustKeyId(publicKey: KeyObject): string {
  const hash = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)?.join(':') ?? out;
}

/** "repository:ns/app:pull,push" → Access. Names may not contain ':', but a type may ("repository(plugin)"). */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  const actions = scope.slice(last + 1).split(',').filter(Boolean);
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function basicUser(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^basic\s+(\S+)$/i.exec(header ?? '');
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Key + self-signed cert via the openssl CLI (EC P-256: fast to generate, signs ES256). */
async function makeKey(dir: string): Promise<{ key: KeyObject; certPath: string; certDerB64: string }> {
  const openssl = findBinary('openssl', ['/usr/bin/openssl', '/usr/local/bin/openssl']);
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await promisify(execFile)(openssl, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=berth-test-token-issuer',
  ]);
  const certPem = await readFile(certPath, 'utf8');
  const certDerB64 = certPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  return { key: createPrivateKey(await readFile(keyPath)), certPath, certDerB64 };
}

export async function startTokenIssuer(opts: TokenIssuerOptions): Promise<TokenIssuer> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-token-'));
  dirs.add(dir);
  const { key, certPath, certDerB64 } = await makeKey(dir).catch(async (err: unknown) => {
    dirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  const issuer = opts.issuer ?? 'berth-test-issuer';
  const header =
    (opts.keyId ?? 'x5c') === 'x5c'
      ? { typ: 'JWT', alg: 'ES256', x5c: [certDerB64] }
      : { typ: 'JWT', alg: 'ES256', kid: libtrustKeyId(createPublicKey(key)) };
  let expiresIn = opts.expiresIn ?? 300;
  let reported = expiresIn;
  let failure: number | undefined;
  const requests: TokenRequest[] = [];
  const anonymousOpen = Object.keys(opts.users).length === 0;

  const signToken = (access: Access[], claims: Record<string, unknown> = {}, sub = ''): string => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { iss: issuer, sub, aud: opts.service, exp: now + expiresIn, nbf: now - 1, iat: now, jti: randomUUID(), access, ...claims };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
    // JWS wants ECDSA signatures as raw r||s, not DER.
    const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${b64url(sig)}`;
  };

  const policy = (user: string | undefined, name: string, requested: string[]): string[] => {
    if (opts.authorize) return opts.authorize(user, name, requested);
    if (user !== undefined || anonymousOpen) return requested;
    return opts.allowAnonymousPull ? requested.filter((a) => a === 'pull') : [];
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://issuer');
    const query: Record<string, string[]> = {};
    for (const [k, v] of url.searchParams) (query[k] ??= []).push(v);
    const rec: TokenRequest = { method: req.method ?? '', path: url.pathname, query, authorization: !!req.headers.authorization, user: undefined, status: 0, granted: [] };
    requests.push(rec);
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    req.resume();
    if (url.pathname !== '/token') return reply(404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] });
    // POST is the OAuth2 refresh-token flow; clients fall back to GET on 404/405.
    if (req.method !== 'GET') return reply(405, { errors: [{ code: 'UNSUPPORTED', message: 'GET only' }] }, { allow: 'GET' });
    if (failure !== undefined) return reply(failure, { errors: [{ code: 'UNAVAILABLE', message: 'injected failure' }] });
    let user: string | undefined;
    if (req.headers.authorization !== undefined) {
      const creds = basicUser(req.headers.authorization);
      if (!creds || !Object.hasOwn(opts.users, creds.user) || opts.users[creds.user] !== creds.password) {
        return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }, { 'www-authenticate': 'Basic realm="berth-test-token"' });
      }
      user = rec.user = creds.user;
    }
    if (query.service?.[0] !== undefined && query.service[0] !== opts.service) {
      return reply(400, { errors: [{ code: 'DENIED', message: `unknown service ${query.service[0]}` }] });
    }
    // Each scope parameter may itself hold several space-separated scopes.
    const scopes = (query.scope ?? []).flatMap((s) => s.split(' ')).filter(Boolean);
    rec.granted = scopes
      .map(parseScope)
      .filter((a): a is Access => a !== undefined && a.type === 'repository')
      .map((a) => ({ ...a, actions: policy(user, a.name, a.actions) }))
      .filter((a) => a.actions.length > 0);
    const token = signToken(rec.granted, {}, user ?? '');
    reply(200, { token, access_token: token, expires_in: reported, issued_at: new Date().toISOString() });
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, HOST, resolve));
  const url = `http://${HOST}:${(server.address() as AddressInfo).port}`;
  let stopped = false;
  return {
    url,
    realm: `${url}/token`,
    service: opts.service,
    issuer,
    rootCertBundle: certPath,
    requests,
    setExpiresIn: (seconds, rep = seconds) => {
      expiresIn = seconds;
      reported = rep;
    },
    failWith: (status) => {
      failure = status;
    },
    sign: (access, claims) => signToken(access, claims),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      dirs.delete(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
