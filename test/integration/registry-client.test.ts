// RegistryClient against the real docker-registry 2.8: anonymous, htpasswd and token auth, and the
// fault proxy for throttling, 5xx, redirects to another host, ignored ranges, drops and corruption.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { checkLogin, RegistryClient, type RegistryClientOptions, type RetryInfo } from '../../src/image/registry/client.js';
import { HttpClient, readBody } from '../../src/image/registry/http.js';
import { MT, pushBusyboxImage, type BuiltImage } from '../helpers/images/build.js';
import { blobOf, jsonBlob, sha256, type Blob } from '../helpers/images/oci.js';
import { startFaultProxy, type FaultProxy } from '../helpers/services/fault-proxy.js';
import { freePort } from '../helpers/services/ports.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { startTokenIssuer, type TokenIssuer } from '../helpers/services/token-issuer.js';

const MANIFESTS = /\/manifests\//;
const BLOBS = /\/blobs\/sha256:/;
const ALICE = { username: 'alice', password: 's3cret pass:word' };

/** Reads a stream to the end; on failure returns what arrived and the error. */
async function drain(stream: Readable): Promise<{ bytes: Buffer; error: unknown }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of stream) chunks.push(c as Buffer);
    return { bytes: Buffer.concat(chunks), error: undefined };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error };
  }
}

async function failure(p: Promise<unknown>): Promise<BerthError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BerthError);
  return err as BerthError;
}

/** The biggest layer of the image: the one worth resuming. */
const bigLayer = (image: BuiltImage): { digest: string; size: number } => image.manifests.flatMap((m) => m.layers).sort((a, b) => b.size - a.size)[0]!;

describe('RegistryClient, anonymous registry behind the fault proxy', () => {
  let reg: RegistryInstance;
  let proxy: FaultProxy;
  let image: BuiltImage;
  let retries: RetryInfo[];
  const repo = 'berth/busybox';
  const client = (opts: RegistryClientOptions = {}): RegistryClient =>
    new RegistryClient(proxy.host, { retry: { baseDelayMs: 20, maxDelayMs: 5_000 }, onRetry: (r) => retries.push(r), ...opts });

  beforeAll(async () => {
    reg = await startRegistry();
    image = await pushBusyboxImage(reg, repo, 'v1');
    proxy = await startFaultProxy(reg.url);
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
  });
  beforeEach(() => {
    proxy.setFaults([]);
    proxy.requests.length = 0;
    retries = [];
  });

  it('pulls the index by tag, a manifest by digest and a blob, with the standard Accept list', async () => {
    const c = client();
    const index = await c.getManifest(repo, 'v1');
    expect(index.digest).toBe(image.indexDigest);
    expect(index.contentType).toBe(MT.ociIndex);
    expect(proxy.requests[0]?.headers.accept).toBe(`${MT.ociIndex}, ${MT.ociManifest}, ${MT.dockerList}, ${MT.dockerManifest}`);
    const m = image.manifests[0]!;
    const manifest = await c.getManifest(repo, m.digest);
    expect(manifest.digest).toBe(m.digest);
    expect(manifest.contentType).toBe(MT.ociManifest);
    const layer = m.layers[0]!;
    const { stream, totalSize } = await c.openBlob(repo, layer.digest, 0);
    const { bytes, error } = await drain(stream);
    expect(error).toBeUndefined();
    expect(totalSize).toBe(layer.size);
    expect(sha256(bytes)).toBe(layer.digest);
    expect(proxy.requests.every((r) => r.headers.authorization === undefined && r.headers.range === undefined)).toBe(true);
    expect(retries).toEqual([]);
  });

  it('maps 404 to notFound, and 403 to auth without retrying', async () => {
    expect((await failure(client().getManifest(repo, 'no-such-tag'))).category).toBe('notFound');
    expect((await failure(client().getManifest('berth/nothing-here', 'v1'))).category).toBe('notFound');
    expect((await failure(client().openBlob(repo, sha256(Buffer.from('absent')), 0))).category).toBe('notFound');
    proxy.requests.length = 0;
    proxy.setFaults([{ path: MANIFESTS, status: 403 }]);
    expect((await failure(client().getManifest(repo, 'v1'))).category).toBe('auth');
    expect(proxy.requests).toHaveLength(1);
    expect(retries).toEqual([]);
  });

  it('waits as long as Retry-After says on a 429, then succeeds', async () => {
    proxy.setFaults([{ path: MANIFESTS, nth: 1, status: 429, retryAfter: 1 }]);
    const index = await client().getManifest(repo, 'v1');
    expect(index.digest).toBe(image.indexDigest);
    expect(retries).toEqual([{ attempt: 1, delayMs: 1000, reason: expect.stringContaining('HTTP 429') }]);
    expect(proxy.requests.map((r) => r.status)).toEqual([429, 200]);
  });

  it('retries 503 twice with backoff, then succeeds; gives up as network after the last attempt', async () => {
    proxy.setFaults([{ path: BLOBS, nth: [1, 2], status: 503 }]);
    const layer = image.manifests[0]!.layers[0]!;
    const { stream } = await client().openBlob(repo, layer.digest, 0);
    expect(sha256((await drain(stream)).bytes)).toBe(layer.digest);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
    expect(retries[0]!.delayMs).toBeLessThan(20);
    expect(retries[1]!.delayMs).toBeLessThan(40);

    proxy.setFaults([{ path: MANIFESTS, status: 503 }]);
    retries = [];
    const err = await failure(client({ retry: { attempts: 3, baseDelayMs: 5 } }).getManifest(repo, 'v1'));
    expect(err.category).toBe('network');
    expect(err.message).toContain('gave up after 3 attempts');
    expect(retries).toHaveLength(2);
  });

  it('retries a refused connection, then reports network', async () => {
    const port = await freePort();
    const err = await failure(new RegistryClient(`127.0.0.1:${port}`, { retry: { attempts: 2, baseDelayMs: 5 }, onRetry: (r) => retries.push(r) }).getManifest(repo, 'v1'));
    expect(err.category).toBe('network');
    expect(retries).toHaveLength(1);
    expect(retries[0]!.reason).toContain('ECONNREFUSED');
  });

  it('resumes with Range (206) and still yields exactly bytes N.. when the server ignores it (200)', async () => {
    const layer = bigLayer(image);
    const full = (await drain((await client().openBlob(repo, layer.digest, 0)).stream)).bytes;
    const from = Math.floor(layer.size / 3);
    const ranged = await client().openBlob(repo, layer.digest, from);
    expect(ranged.totalSize).toBe(layer.size);
    expect(Buffer.compare((await drain(ranged.stream)).bytes, full.subarray(from))).toBe(0);
    expect(proxy.requests.at(-1)).toMatchObject({ status: 206, headers: { range: `bytes=${from}-` } });

    proxy.setFaults([{ path: BLOBS, ignoreRange: true }]);
    const ignored = await client().openBlob(repo, layer.digest, from);
    expect(ignored.totalSize).toBe(layer.size);
    const rest = (await drain(ignored.stream)).bytes;
    expect(rest.length).toBe(layer.size - from);
    expect(Buffer.compare(rest, full.subarray(from))).toBe(0);
    expect(proxy.requests.at(-1)).toMatchObject({ status: 200, faults: ['ignoreRange'] });
  });

  it('fails the stream when the connection drops; a second openBlob at the received offset completes the blob', async () => {
    const layer = bigLayer(image);
    proxy.setFaults([{ path: BLOBS, nth: 1, dropAfterBytes: 100_000 }]);
    const c = client();
    const first = await drain((await c.openBlob(repo, layer.digest, 0)).stream);
    expect(first.error).toBeInstanceOf(BerthError);
    expect((first.error as BerthError).category).toBe('network');
    expect(first.bytes.length).toBe(100_000);
    const second = await drain((await c.openBlob(repo, layer.digest, first.bytes.length)).stream);
    expect(second.error).toBeUndefined();
    expect(sha256(Buffer.concat([first.bytes, second.bytes]))).toBe(layer.digest);
  });

  it('refuses an offset past the end with a clear invalid error (416)', async () => {
    const layer = image.manifests[0]!.layers[0]!;
    const err = await failure(client().openBlob(repo, layer.digest, layer.size + 10));
    expect(err.category).toBe('invalid');
    expect(err.message).toContain(`from byte ${layer.size + 10}`);
    expect(err.message).toContain(`${layer.size} bytes`);
  });

  it('verifies manifests: by digest against the reference, by tag against Docker-Content-Digest', async () => {
    proxy.setFaults([{ path: MANIFESTS, corrupt: 20 }]);
    const byDigest = await failure(client().getManifest(repo, image.indexDigest!));
    expect(byDigest.category).toBe('invalid');
    expect(byDigest.message).toContain('digest mismatch');
    const byTag = await failure(client().getManifest(repo, 'v1'));
    expect(byTag.category).toBe('invalid');
    expect(byTag.message).toContain('Docker-Content-Digest');
    expect(retries).toEqual([]);
  });

  it('cancels a delayed request, and a wait for Retry-After, with cancelled', async () => {
    proxy.setFaults([{ path: MANIFESTS, nth: 1, delayMs: 5_000 }]);
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 200);
    expect((await failure(client().getManifest(repo, 'v1', ac.signal))).category).toBe('cancelled');
    expect(Date.now() - t0).toBeLessThan(3_000);

    proxy.setFaults([{ path: MANIFESTS, status: 429, retryAfter: 30 }]);
    const ac2 = new AbortController();
    const c = client({ onRetry: () => ac2.abort() });
    const t1 = Date.now();
    expect((await failure(c.getManifest(repo, 'v1', ac2.signal))).category).toBe('cancelled');
    expect(Date.now() - t1).toBeLessThan(3_000);
  });

  it('cancels a blob body under way', async () => {
    const layer = bigLayer(image);
    const ac = new AbortController();
    const { stream } = await client().openBlob(repo, layer.digest, 0, ac.signal);
    ac.abort();
    const { error } = await drain(stream);
    expect(error).toMatchObject({ category: 'cancelled' });
  });

  it('fails a request whose headers do not come in time', async () => {
    proxy.setFaults([{ path: MANIFESTS, delayMs: 1_500 }]);
    const err = await failure(client({ timeouts: { headersMs: 200 }, retry: { attempts: 2, baseDelayMs: 5 } }).getManifest(repo, 'v1'));
    expect(err.category).toBe('network');
    expect(err.message).toContain('no response within 0.2 s');
    expect(retries).toHaveLength(1);
  });
});

describe('RegistryClient, htpasswd registry', () => {
  let reg: RegistryInstance;
  let proxy: FaultProxy;
  let image: BuiltImage;
  const repo = 'berth/private';

  beforeAll(async () => {
    reg = await startRegistry({ htpasswd: [ALICE] });
    image = await pushBusyboxImage(reg, repo, 'v1', { auth: ALICE, arches: ['arm64'] });
    proxy = await startFaultProxy(reg.url);
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
  });
  beforeEach(() => {
    proxy.setFaults([]);
    proxy.requests.length = 0;
  });

  it('answers the Basic challenge once, then sends credentials up front', async () => {
    const c = new RegistryClient(proxy.host, { credentials: ALICE });
    expect((await c.getManifest(repo, 'v1')).digest).toBe(image.indexDigest);
    const layer = image.manifests[0]!.layers[0]!;
    expect(sha256((await drain((await c.openBlob(repo, layer.digest, 0)).stream)).bytes)).toBe(layer.digest);
    expect(proxy.requests.map((r) => [r.status, r.headers.authorization !== undefined])).toEqual([
      [401, false],
      [200, true],
      [200, true],
    ]);
  });

  it('without credentials: auth, naming the registry and hinting berth login', async () => {
    const err = await failure(new RegistryClient(proxy.host).getManifest(repo, 'v1'));
    expect(err.category).toBe('auth');
    expect(err.message).toContain(proxy.host);
    expect(err.hint).toBe(`berth login ${proxy.host}`);
  });

  it('with a wrong password: auth', async () => {
    const err = await failure(new RegistryClient(proxy.host, { credentials: { username: 'alice', password: 'nope' } }).getManifest(repo, 'v1'));
    expect(err.category).toBe('auth');
    expect(err.message).toContain('refused the credentials of alice');
  });

  it('checkLogin accepts the right credentials and refuses wrong ones', async () => {
    await checkLogin(reg.host, ALICE);
    expect((await failure(checkLogin(reg.host, { username: 'alice', password: 'x' }))).category).toBe('auth');
    expect((await failure(checkLogin(reg.host, { username: 'mallory', password: 'x' }))).category).toBe('auth');
  });

  it('follows a redirect to another host without Authorization, and the blob arrives', async () => {
    proxy.setFaults([{ path: BLOBS, redirectTo: 'other-host' }]);
    const layer = bigLayer(image);
    const c = new RegistryClient(proxy.host, { credentials: ALICE });
    await c.getManifest(repo, 'v1'); // learns the Basic challenge: the blob GET carries Authorization
    proxy.requests.length = 0;
    const { stream, totalSize } = await c.openBlob(repo, layer.digest, 0);
    expect(totalSize).toBe(layer.size);
    const full = (await drain(stream)).bytes;
    expect(sha256(full)).toBe(layer.digest);
    expect(proxy.requests.map((r) => [r.listener, r.status, r.headers.authorization !== undefined])).toEqual([
      ['main', 307, true],
      ['other', 200, false],
    ]);
    // A resume through the redirect keeps its Range.
    const from = 1000;
    const resumed = await drain((await c.openBlob(repo, layer.digest, from)).stream);
    expect(Buffer.compare(resumed.bytes, full.subarray(from))).toBe(0);
    expect(proxy.requests.at(-1)).toMatchObject({ listener: 'other', status: 206, headers: { range: `bytes=${from}-` } });
  });
});

/** Monolithic blob upload and a manifest PUT with a Bearer token (the image builder speaks Basic only). */
async function pushWithToken(url: string, repo: string, tag: string, token: string): Promise<{ manifest: Blob; layer: Blob }> {
  const headers = { authorization: `Bearer ${token}` };
  const layer = blobOf(randomBytes(200_000), MT.ociLayerTar);
  const config = jsonBlob({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.desc.digest] } }, MT.ociConfig);
  for (const b of [layer, config]) {
    const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
    await start.arrayBuffer();
    const put = new URL(start.headers.get('location') ?? '', url);
    put.searchParams.set('digest', b.desc.digest);
    const res = await fetch(put, { method: 'PUT', body: b.bytes, headers: { ...headers, 'content-type': 'application/octet-stream' } });
    expect(res.status, await res.text()).toBe(201);
  }
  const manifest = jsonBlob({ schemaVersion: 2, mediaType: MT.ociManifest, config: config.desc, layers: [layer.desc] }, MT.ociManifest);
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest.bytes, headers: { ...headers, 'content-type': MT.ociManifest } });
  expect(res.status, await res.text()).toBe(201);
  return { manifest, layer };
}

describe('RegistryClient, token auth', () => {
  let issuer: TokenIssuer;
  let reg: RegistryInstance;
  let pub: { manifest: Blob; layer: Blob };
  let priv: { manifest: Blob; layer: Blob };
  const tokenRequests = (scope: string): number => issuer.requests.filter((r) => r.query.scope?.includes(scope)).length;

  beforeAll(async () => {
    issuer = await startTokenIssuer({
      users: { alice: ALICE.password },
      service: 'berth-registry',
      // Anonymous callers may pull public/*; alice may do anything.
      authorize: (user, name, requested) => (user !== undefined ? requested : name.startsWith('public/') ? requested.filter((a) => a === 'pull') : []),
    });
    reg = await startRegistry({ token: issuer });
    const push = (name: string): string => issuer.sign([{ type: 'repository', name, actions: ['pull', 'push'] }]);
    pub = await pushWithToken(reg.url, 'public/app', 'v1', push('public/app'));
    priv = await pushWithToken(reg.url, 'private/app', 'v1', push('private/app'));
  });
  afterAll(async () => {
    await reg?.stop();
    await issuer?.stop();
  });
  beforeEach(() => {
    issuer.setExpiresIn(300);
    issuer.requests.length = 0;
  });

  it('asks the issuer once for many requests of one scope, concurrent ones included', async () => {
    const c = new RegistryClient(reg.host);
    const m = await c.getManifest('public/app', 'v1');
    expect(m.digest).toBe(pub.manifest.desc.digest);
    await c.getManifest('public/app', pub.manifest.desc.digest);
    const blobs = await Promise.all([1, 2, 3, 4].map(async () => drain((await c.openBlob('public/app', pub.layer.desc.digest, 0)).stream)));
    for (const b of blobs) expect(sha256(b.bytes)).toBe(pub.layer.desc.digest);
    expect(tokenRequests('repository:public/app:pull')).toBe(1);
    expect(issuer.requests).toHaveLength(1);
    expect(issuer.requests[0]).toMatchObject({ authorization: false, status: 200, query: { service: ['berth-registry'] } });
  });

  it('sends credentials to the realm and pulls what only they grant', async () => {
    const c = new RegistryClient(reg.host, { credentials: ALICE });
    expect((await c.getManifest('private/app', 'v1')).digest).toBe(priv.manifest.desc.digest);
    expect(issuer.requests).toMatchObject([{ user: 'alice', query: { account: ['alice'], scope: ['repository:private/app:pull'] } }]);
  });

  it('without credentials for a private repository: auth with the login hint', async () => {
    const err = await failure(new RegistryClient(reg.host).getManifest('private/app', 'v1'));
    expect(err.category).toBe('auth');
    expect(err.hint).toBe(`berth login ${reg.host}`);
  });

  it('with a wrong password: auth (the issuer refuses), and checkLogin says so', async () => {
    const bad = { username: 'alice', password: 'wrong' };
    expect((await failure(new RegistryClient(reg.host, { credentials: bad }).getManifest('private/app', 'v1'))).category).toBe('auth');
    expect((await failure(checkLogin(reg.host, bad))).category).toBe('auth');
    await checkLogin(reg.host, ALICE);
  });

  it('fetches a new token once the cached one is about to expire', async () => {
    issuer.setExpiresIn(300, 1); // valid for the registry, but reported to live 1 s
    const c = new RegistryClient(reg.host);
    await c.getManifest('public/app', 'v1');
    await c.getManifest('public/app', 'v1');
    expect(tokenRequests('repository:public/app:pull')).toBe(1);
    await new Promise((r) => setTimeout(r, 1_100));
    await c.getManifest('public/app', 'v1');
    expect(tokenRequests('repository:public/app:pull')).toBe(2);
  });

  it('drops a cached token the registry refuses and retries once with a fresh one', async () => {
    // Expired by the clock but within the registry's 60 s leeway for ~2-3 s; reported to live 300 s.
    issuer.setExpiresIn(-57, 300);
    const c = new RegistryClient(reg.host);
    await c.getManifest('public/app', 'v1');
    await new Promise((r) => setTimeout(r, 4_000));
    issuer.setExpiresIn(300);
    expect((await c.getManifest('public/app', 'v1')).digest).toBe(pub.manifest.desc.digest);
    expect(tokenRequests('repository:public/app:pull')).toBe(2);
  });

  it('retries when the token server is unavailable', async () => {
    issuer.failWith(503);
    const retries: RetryInfo[] = [];
    const c = new RegistryClient(reg.host, { retry: { baseDelayMs: 5 }, onRetry: (r) => {
      retries.push(r);
      issuer.failWith(undefined);
    } });
    try {
      expect((await c.getManifest('public/app', 'v1')).digest).toBe(pub.manifest.desc.digest);
    } finally {
      issuer.failWith(undefined);
    }
    expect(retries).toHaveLength(1);
    expect(retries[0]!.reason).toContain('token from');
  });
});

// Loopback registries speak plain HTTP, so the TLS options are tested on the HTTP layer itself.
describe('HttpClient over TLS', () => {
  let dir: string;
  let server: HttpsServer;
  let url: URL;
  let cert: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-tls-'));
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=berth-test-registry', '-addext', 'subjectAltName=IP:127.0.0.1',
    ]);
    cert = await readFile(join(dir, 'cert.pem'), 'utf8');
    server = createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert }, (req, res) => res.end(`tls ok ${req.url}`));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`);
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const get = async (http: HttpClient): Promise<string> => {
    const res = await http.request({ url, what: 'tls test' });
    return (await readBody(res.message, 1024, 'tls test')).toString();
  };

  it('refuses an untrusted certificate with a hint, trusts it with the CA, or with tlsVerify off for that host only', async () => {
    const err = await failure(get(new HttpClient()));
    expect(err.category).toBe('network');
    expect(err.hint).toContain('--tls-verify=false');
    expect(await get(new HttpClient({ ca: cert }))).toBe('tls ok /v2/');
    expect(await get(new HttpClient({ tlsVerify: false, tlsHost: url.host }))).toBe('tls ok /v2/');
    expect((await failure(get(new HttpClient({ tlsVerify: false, tlsHost: 'other:443' })))).category).toBe('network');
  });
});
