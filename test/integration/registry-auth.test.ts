// Proves the auth test infrastructure against the real docker-registry 2.8 with plain fetch:
// htpasswd Basic auth, and Bearer tokens from our token issuer (Docker token spec).
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { startTokenIssuer, type TokenIssuer } from '../helpers/services/token-issuer.js';

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const repo = 'berth/auth-app';

/** Monolithic upload (POST then PUT ?digest=); returns the final PUT's response. */
async function pushBlob(registry: string, name: string, bytes: Uint8Array, authorization?: string): Promise<Response> {
  const headers: Record<string, string> = authorization ? { authorization } : {};
  const start = await fetch(`${registry}/v2/${name}/blobs/uploads/`, { method: 'POST', headers });
  await start.arrayBuffer();
  if (start.status !== 202) return start;
  const put = new URL(start.headers.get('location') ?? '', registry);
  put.searchParams.set('digest', sha256(bytes));
  return fetch(put, { method: 'PUT', body: bytes, headers: { ...headers, 'content-type': 'application/octet-stream' } });
}

async function getBlob(registry: string, name: string, digest: string, authorization?: string): Promise<{ status: number; body: Buffer; challenge: string | null }> {
  const res = await fetch(`${registry}/v2/${name}/blobs/${digest}`, { headers: authorization ? { authorization } : {} });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), challenge: res.headers.get('www-authenticate') };
}

describe('registry with htpasswd auth', () => {
  let reg: RegistryInstance;
  const alice = basic('alice', 's3cret pass:word');

  beforeAll(async () => {
    reg = await startRegistry({ htpasswd: [{ username: 'alice', password: 's3cret pass:word' }, { username: 'bob', password: 'hunter2' }] });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('challenges anonymous and wrong credentials with Basic, accepts the right ones', async () => {
    const anon = await fetch(`${reg.url}/v2/`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Basic realm="berth-test"');
    expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('alice', 'nope') } })).status).toBe(401);
    expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: alice } })).status).toBe(200);
    expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: basic('bob', 'hunter2') } })).status).toBe(200);
  });

  it('pushes and pulls a blob with credentials, refuses both without', async () => {
    const blob = randomBytes(4096);
    expect((await pushBlob(reg.url, repo, blob)).status).toBe(401);
    const put = await pushBlob(reg.url, repo, blob, alice);
    expect(put.status, await put.text()).toBe(201);
    expect((await getBlob(reg.url, repo, sha256(blob))).status).toBe(401);
    const got = await getBlob(reg.url, repo, sha256(blob), alice);
    expect(got.status).toBe(200);
    expect(sha256(got.body)).toBe(sha256(blob));
  });
});

describe('registry with token auth', () => {
  let issuer: TokenIssuer;
  let reg: RegistryInstance;
  const blob = randomBytes(8192);

  const token = async (scope: string, authorization?: string): Promise<string> => {
    const res = await fetch(`${issuer.realm}?service=${issuer.service}&scope=${encodeURIComponent(scope)}`, { headers: authorization ? { authorization } : {} });
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  };

  beforeAll(async () => {
    issuer = await startTokenIssuer({ users: { alice: 's3cret' }, service: 'berth-registry', allowAnonymousPull: true });
    reg = await startRegistry({ token: issuer });
  });
  afterAll(async () => {
    await reg?.stop();
    await issuer?.stop();
  });

  it('challenges with a Bearer realm, service and the scope the request needs', async () => {
    const res = await fetch(`${reg.url}/v2/${repo}/manifests/x`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${issuer.realm}",service="berth-registry",scope="repository:${repo}:pull"`);
  });

  it('issues spec-shaped tokens for Basic credentials and rejects a wrong password', async () => {
    const res = await fetch(`${issuer.realm}?service=berth-registry&scope=repository:${repo}:pull,push&account=alice`, { headers: { authorization: basic('alice', 's3cret') } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(Date.parse(body.issued_at)).toBeGreaterThan(Date.now() - 60_000);
    const [head, claims] = body.token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>);
    expect(head).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(claims).toMatchObject({ iss: issuer.issuer, sub: 'alice', aud: 'berth-registry', access: [{ type: 'repository', name: repo, actions: ['pull', 'push'] }] });

    const bad = await fetch(`${issuer.realm}?service=berth-registry&scope=repository:${repo}:pull`, { headers: { authorization: basic('alice', 'wrong') } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect(issuer.requests.at(-1)).toMatchObject({ status: 401, authorization: true, user: undefined });
    expect(issuer.requests.at(-2)).toMatchObject({ status: 200, user: 'alice', query: { account: ['alice'] } });
  });

  it('pushes with a push token and pulls with a pull token; a pull token cannot push', async () => {
    const before = issuer.requests.length;
    const push = `Bearer ${await token(`repository:${repo}:pull,push`, basic('alice', 's3cret'))}`;
    const put = await pushBlob(reg.url, repo, blob, push);
    expect(put.status, await put.text()).toBe(201);

    const pull = `Bearer ${await token(`repository:${repo}:pull`, basic('alice', 's3cret'))}`;
    // One token, several pulls: the issuer is asked once (what a caching client must achieve).
    for (let i = 0; i < 3; i++) expect(sha256((await getBlob(reg.url, repo, sha256(blob), pull)).body)).toBe(sha256(blob));
    expect(issuer.requests.length - before).toBe(2);

    const denied = await pushBlob(reg.url, repo, randomBytes(16), pull);
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
  });

  it('gives anonymous callers pull only: they can pull but not push', async () => {
    const anon = `Bearer ${await token(`repository:${repo}:pull,push`)}`;
    expect(issuer.requests.at(-1)).toMatchObject({ authorization: false, user: undefined, granted: [{ name: repo, actions: ['pull'] }] });
    expect((await getBlob(reg.url, repo, sha256(blob), anon)).status).toBe(200);
    // Registry 2.8 answers missing scope with 401 (not 403) and says why in the challenge.
    const denied = await pushBlob(reg.url, repo, randomBytes(16), anon);
    expect(denied.status).toBe(401);
    // The registry lists the scope's actions in map order (Go): pull,push or push,pull.
    const challenge = denied.headers.get('www-authenticate') ?? '';
    const actions = /scope="repository:[^:]+:([^"]+)"/.exec(challenge)?.[1]?.split(',').sort();
    expect(challenge.replace(/:(pull,push|push,pull)"/, ':ACTIONS"')).toBe(
      `Bearer realm="${issuer.realm}",service="berth-registry",scope="repository:${repo}:ACTIONS",error="insufficient_scope"`,
    );
    expect(actions).toEqual(['pull', 'push']);
  });

  it('refuses expired tokens (beyond the registry 60 s leeway) and tokens for another audience', async () => {
    const access = [{ type: 'repository', name: repo, actions: ['pull'] }];
    const now = Math.floor(Date.now() / 1000);
    const stale = await getBlob(reg.url, repo, sha256(blob), `Bearer ${issuer.sign(access, { exp: now - 30 })}`);
    expect(stale.status).toBe(200); // within leeway: still accepted
    issuer.setExpiresIn(-120);
    try {
      const expired = await getBlob(reg.url, repo, sha256(blob), `Bearer ${await token(`repository:${repo}:pull`, basic('alice', 's3cret'))}`);
      expect(expired.status).toBe(401);
      expect(expired.challenge).toContain('error="invalid_token"');
    } finally {
      issuer.setExpiresIn(300);
    }
    expect((await getBlob(reg.url, repo, sha256(blob), `Bearer ${issuer.sign(access, { aud: 'elsewhere' })}`)).status).toBe(401);
  });

  it('refuses a well-formed token signed by a key outside rootcertbundle', async () => {
    const rogue = await startTokenIssuer({ users: {}, service: 'berth-registry', issuer: issuer.issuer });
    try {
      const tok = rogue.sign([{ type: 'repository', name: repo, actions: ['pull'] }]);
      const res = await getBlob(reg.url, repo, sha256(blob), `Bearer ${tok}`);
      expect(res.status).toBe(401);
      expect(res.challenge).toContain('error="invalid_token"');
    } finally {
      await rogue.stop();
    }
  });

  it('can make the issuer fail', async () => {
    issuer.failWith(503);
    try {
      expect((await fetch(`${issuer.realm}?service=berth-registry`)).status).toBe(503);
    } finally {
      issuer.failWith(undefined);
    }
  });
});

describe('registry 2.8 also trusts a libtrust kid instead of x5c', () => {
  it('accepts a token whose header names its key by kid', async () => {
    const issuer = await startTokenIssuer({ users: {}, service: 'berth-kid', keyId: 'kid' });
    const reg = await startRegistry({ token: issuer }).catch(async (err: unknown) => {
      await issuer.stop();
      throw err;
    });
    try {
      const tok = ((await (await fetch(`${issuer.realm}?service=berth-kid&scope=repository:${repo}:pull,push`)).json()) as { token: string }).token;
      const head = JSON.parse(Buffer.from(tok.split('.')[0] ?? '', 'base64url').toString()) as { kid?: string; x5c?: unknown };
      expect(head.kid).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
      expect(head.x5c).toBeUndefined();
      const bytes = randomBytes(512);
      expect((await pushBlob(reg.url, repo, bytes, `Bearer ${tok}`)).status).toBe(201);
      expect((await getBlob(reg.url, repo, sha256(bytes), `Bearer ${tok}`)).status).toBe(200);
    } finally {
      await reg.stop();
      await issuer.stop();
    }
  });
});
