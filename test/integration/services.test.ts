// Proves the real service helpers work (no mocks): later integration tests build on them.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, tcpAccepts, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('mosquitto', () => {
  let broker: MosquittoInstance;
  const clients: MqttClient[] = [];

  const client = async (clientId: string): Promise<MqttClient> => {
    // reconnectPeriod 0: a broken broker should fail the test, not be retried forever.
    const c = await connectAsync(broker.url, { protocolVersion: 5, clientId, reconnectPeriod: 0, connectTimeout: 5_000 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker?.stop();
  });

  it('delivers a retained QoS 1 message to a later MQTT 5 subscriber', async () => {
    const topic = 'berth/v1/dev1/desired';
    const body = JSON.stringify({ revision: 1, apps: {} });
    const pub = await client('berth-test-pub');
    await pub.publishAsync(topic, body, { qos: 1, retain: true });

    const sub = await client('berth-test-sub');
    const received = new Promise<{ topic: string; payload: string; retain: boolean }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no retained message\n${broker.logs()}`)), 5_000);
      sub.once('message', (t, payload, packet) => {
        clearTimeout(timer);
        resolve({ topic: t, payload: payload.toString(), retain: packet.retain });
      });
    });
    await sub.subscribeAsync(topic, { qos: 1 });
    expect(await received).toEqual({ topic, payload: body, retain: true });
  });

  it('gives concurrent brokers distinct ports and cleans up on stop()', async () => {
    const other = await startMosquitto();
    try {
      expect(other.port).not.toBe(broker.port);
      expect(await tcpAccepts(other.host, other.port)).toBe(true);
    } finally {
      await other.stop();
    }
    expect(await tcpAccepts(other.host, other.port)).toBe(false);
    expect(existsSync(other.dir)).toBe(false);
    await other.stop(); // idempotent
  });

  it('fails fast with the daemon output on a bad config and leaves no temp dir', async () => {
    const dirs = () => readdirSync(tmpdir()).filter((d) => d.startsWith('berth-mosquitto-'));
    const before = new Set(dirs());
    const t0 = Date.now();
    await expect(startMosquitto({ extraConfig: ['no_such_option 1'] })).rejects.toThrow(/exited during startup[\s\S]*no_such_option/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(dirs().filter((d) => !before.has(d))).toEqual([]);
  });
});

describe('docker-registry', () => {
  let reg: RegistryInstance;
  const repo = 'berth/test-app';

  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  /** Monolithic upload: POST opens a session, PUT <location>&digest=... sends the bytes. */
  const uploadBlob = async (bytes: Uint8Array): Promise<string> => {
    const digest = sha256(bytes);
    const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = start.headers.get('location');
    expect(location).toBeTruthy();
    // The Location may be relative or absolute and may already carry a query (_state=...).
    const put = new URL(location ?? '', reg.url);
    put.searchParams.set('digest', digest);
    const res = await fetch(put, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status, await res.text()).toBe(201);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    return digest;
  };

  it('stores blobs and an OCI manifest and serves them back byte for byte', async () => {
    const tarish = Buffer.from('pretend this is a tar of the app rootfs\n');
    const layer = gzipSync(tarish);
    const layerDigest = await uploadBlob(layer);
    const config = Buffer.from(
      JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tarish)] } }),
    );
    const configDigest = await uploadBlob(config);

    const mediaType = 'application/vnd.oci.image.manifest.v1+json';
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
      }),
    );
    const put = await fetch(`${reg.url}/v2/${repo}/manifests/v1`, {
      method: 'PUT',
      body: manifest,
      headers: { 'content-type': mediaType },
    });
    expect(put.status, await put.text()).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(sha256(manifest));

    const get = await fetch(`${reg.url}/v2/${repo}/manifests/v1`, { headers: { accept: mediaType } });
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe(mediaType);
    const body = new Uint8Array(await get.arrayBuffer());
    expect(sha256(body)).toBe(sha256(manifest));
    expect(get.headers.get('docker-content-digest')).toBe(sha256(manifest));

    const head = await fetch(`${reg.url}/v2/${repo}/blobs/${layerDigest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(layer.length);
    expect(head.headers.get('docker-content-digest')).toBe(layerDigest);

    const missing = await fetch(`${reg.url}/v2/${repo}/blobs/${sha256(Buffer.from('nope'))}`, { method: 'HEAD' });
    expect(missing.status).toBe(404);
  });
});
