// Proves the fault-injecting proxy against a real docker-registry with plain fetch and a ~1 MB blob.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/services/fault-proxy.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const repo = 'berth/faulty';
const BLOB = /\/blobs\/sha256:/;

describe('fault proxy in front of docker-registry', () => {
  let reg: RegistryInstance;
  let proxy: FaultProxy;
  const blob = randomBytes(1024 * 1024 + 123);
  const digest = sha256(blob);
  let blobUrl: string;

  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    blobUrl = `${proxy.url}/v2/${repo}/blobs/${digest}`;
    // Upload through the proxy: only works if the upload Location is rewritten to the proxy.
    const start = await fetch(`${proxy.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    // Registry 2.8 answers absolute Locations built from Host, which the proxy sets to the upstream.
    const location = start.headers.get('location') ?? '';
    expect(location.startsWith(`${proxy.url}/v2/${repo}/blobs/uploads/`)).toBe(true);
    const put = new URL(location, proxy.url);
    put.searchParams.set('digest', digest);
    const res = await fetch(put, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status, await res.text()).toBe(201);
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
  });
  beforeEach(() => {
    proxy.setFaults([]);
    proxy.requests.length = 0;
  });

  it('passes blobs through untouched and records the exchange', async () => {
    const res = await fetch(blobUrl);
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(digest);
    expect(proxy.requests).toMatchObject([{ listener: 'main', method: 'GET', status: 200, bytesSent: blob.length, faults: [], aborted: false }]);
  });

  it('dropAfterBytes cuts the connection mid-body', async () => {
    proxy.setFaults([{ method: 'GET', path: BLOB, dropAfterBytes: 100_000 }]);
    const res = await fetch(blobUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(blob.length));
    // The client gets exactly the first N bytes, then a stream error (undici: "terminated").
    let received = 0;
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const failure = await (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return undefined;
        received += value.length;
      }
    })().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(Error);
    expect(received).toBe(100_000);
    expect(proxy.requests[0]).toMatchObject({ bytesSent: 100_000, aborted: true, faults: ['dropAfterBytes'] });
  });

  it('corrupt flips a byte: same length, different digest', async () => {
    proxy.setFaults([{ path: BLOB, corrupt: 500_000 }]);
    const body = Buffer.from(await (await fetch(blobUrl)).arrayBuffer());
    expect(body.length).toBe(blob.length);
    expect(sha256(body)).not.toBe(digest);
    expect(body[500_000]).toBe((blob[500_000] ?? 0) ^ 0xff);
    expect(Buffer.compare(body.subarray(0, 500_000), blob.subarray(0, 500_000))).toBe(0);
  });

  it('answers 429 with Retry-After on the nth request only', async () => {
    proxy.setFaults([{ method: 'GET', path: BLOB, nth: 2, status: 429, retryAfter: 3 }]);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(blobUrl);
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.headers.get('retry-after')).toBe('3');
        expect(await res.json()).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS' }] });
      } else await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 429, 200]);
  });

  it('passes Range through (206), and ignoreRange turns it into a full 200', async () => {
    const from = 700_000;
    const ranged = await fetch(blobUrl, { headers: { range: `bytes=${from}-` } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes ${from}-${blob.length - 1}/${blob.length}`);
    expect(Buffer.compare(Buffer.from(await ranged.arrayBuffer()), blob.subarray(from))).toBe(0);

    proxy.setFaults([{ path: BLOB, ignoreRange: true }]);
    const full = await fetch(blobUrl, { headers: { range: `bytes=${from}-` } });
    expect(full.status).toBe(200);
    expect(sha256(Buffer.from(await full.arrayBuffer()))).toBe(digest);
    expect(proxy.requests[1]).toMatchObject({ headers: { range: `bytes=${from}-` }, faults: ['ignoreRange'], status: 200 });
  });

  it('delays a response by delayMs', async () => {
    proxy.setFaults([{ path: /^\/v2\/$/, delayMs: 300 }]);
    const t0 = Date.now();
    expect((await fetch(`${proxy.url}/v2/`)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it('redirects blob GETs to another host that refuses Authorization, like S3', async () => {
    proxy.setFaults([{ method: 'GET', path: BLOB, redirectTo: 'other-host' }]);
    const authorization = 'Bearer registry-token';
    const first = await fetch(blobUrl, { headers: { authorization }, redirect: 'manual' });
    expect(first.status).toBe(307);
    const location = new URL(first.headers.get('location') ?? '');
    expect(location.hostname).toBe('127.0.0.2');
    expect(`${location.origin}`).toBe(proxy.otherUrl);
    expect(location.pathname).toBe(`/v2/${repo}/blobs/${digest}`);

    // A client that forwards its registry credentials across hosts is refused (and caught).
    const leaked = await fetch(location, { headers: { authorization } });
    expect(leaked.status).toBe(400);
    await leaked.arrayBuffer();
    const clean = await fetch(location);
    expect(clean.status).toBe(200);
    expect(sha256(Buffer.from(await clean.arrayBuffer()))).toBe(digest);
    // Ranged resumes work on the other host too.
    const ranged = await fetch(location, { headers: { range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.compare(Buffer.from(await ranged.arrayBuffer()), blob.subarray(10, 20))).toBe(0);

    expect(proxy.requests.map((r) => [r.listener, r.status, r.headers.authorization !== undefined])).toEqual([
      ['main', 307, true],
      ['other', 400, true],
      ['other', 200, false],
      ['other', 206, false],
    ]);
    // An unsigned URL on the other host is not a free download.
    expect((await fetch(`${proxy.otherUrl}/v2/${repo}/blobs/${digest}`)).status).toBe(403);
  });

  it("fetch's own redirect following drops Authorization across origins", async () => {
    proxy.setFaults([{ method: 'GET', path: BLOB, redirectTo: 'other-host' }]);
    const res = await fetch(blobUrl, { headers: { authorization: 'Bearer registry-token' } });
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(digest);
    expect(proxy.requests.map((r) => [r.listener, r.headers.authorization !== undefined])).toEqual([
      ['main', true],
      ['other', false],
    ]);
  });

  it('answers 502 when the upstream is gone', async () => {
    const dead = await startFaultProxy('http://127.0.0.1:1', { otherHost: false });
    try {
      expect((await fetch(`${dead.url}/v2/`)).status).toBe(502);
    } finally {
      await dead.stop();
    }
  });
});
