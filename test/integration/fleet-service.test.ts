import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { FleetSim } from '../helpers/fleet-sim.js';
import { api, createToken, startService, type ServiceProcess } from '../helpers/fleet-service.js';
import { COUNTS_AGREE_SQL, expectCountsAgree } from '../helpers/rollout-counts.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { testFleetKey } from '../helpers/signing.js';

// `berth fleet serve` (SQLite) against a real mosquitto, a real registry and simulated devices
// (test/helpers/fleet-sim.ts): the API and its auth, rollouts with digests pinned, persistence across a
// restart, and a kill -9 mid-rollout that resumes without sending any device twice.
// Two instances on one PostgreSQL: fleet-service-pg.test.ts.

const N = 6;
const fleetKey = testFleetKey();
let broker: MosquittoInstance;
let registry: RegistryInstance;
let sim: FleetSim;
let dir: string;
let service: ServiceProcess;
let tokens: { read: string; deploy: string; admin: string };
let indexDigest: string;

const serve = (): Promise<ServiceProcess> => startService([
  '--data', path.join(dir, 'data'), '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml'), '--telemetry-raw', '1h',
]);
const compose = (tag: string): string => `name: shop\nservices:\n  web:\n    image: ${registry.host}/app/web:${tag}\n    command: ["sleep", "3600"]\n`;

async function eventually<T>(fn: () => Promise<T | undefined | false>, ms = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await sleep(200);
  }
}

const rolloutDone = (id: string) => eventually(async () => {
  const r = await api(service.url, 'GET', `/api/v1/rollouts/${id}`, { token: tokens.read });
  return r.body.finishedAt !== null ? r.body : undefined;
}, 60_000, `rollout ${id} finished`);

beforeAll(async () => {
  requireBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-service-'));
  fleetKey.writePrivate(dir);
  fs.writeFileSync(path.join(dir, 'fleet.yaml'), 'signingKey: fleet-key.key\ndevices:\n  svc-0: {groups: [canary], labels: {site: lab}}\n');
  broker = await startMosquitto();
  registry = await startRegistry();
  indexDigest = (await pushBusyboxImage(registry, 'app/web', 'v1', { arches: ['amd64'] })).indexDigest!;
  sim = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'svc', count: N, applyMs: 100, telemetryMs: 300 });
  service = await serve();
  tokens = { read: await createToken('read', path.join(dir, 'data')), deploy: await createToken('deploy', path.join(dir, 'data')), admin: await createToken('admin', path.join(dir, 'data')) };
}, 120_000);

afterAll(async () => {
  await service?.stop();
  await sim?.stop();
  await registry?.stop();
  await broker?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('berth fleet serve', () => {
  it('refuses anonymous and wrong-scope requests, and bad tokens', async () => {
    expect((await api(service.url, 'GET', '/api/v1/devices')).status).toBe(401);
    expect((await api(service.url, 'GET', '/metrics')).status).toBe(401);
    expect((await api(service.url, 'GET', '/api/v1/devices', { token: 'berth_nope' })).status).toBe(401);
    const anonymousWrite = await api(service.url, 'POST', '/api/v1/rollouts', { body: { compose: compose('v1'), all: true } });
    expect(anonymousWrite.status).toBe(401);
    expect(anonymousWrite.body.error.code).toBe('auth');
    const readWrite = await api(service.url, 'POST', '/api/v1/rollouts', { token: tokens.read, body: { compose: compose('v1'), all: true } });
    expect(readWrite.status).toBe(403);
    expect(readWrite.body.error.message).toMatch(/scope deploy/);
    expect((await api(service.url, 'GET', '/api/v1/rollouts', { token: tokens.read })).body.rollouts).toEqual([]);
  });

  it('lists the devices with their state, groups and labels, filtered', async () => {
    const all = await eventually(async () => {
      const r = await api(service.url, 'GET', '/api/v1/devices', { token: tokens.read });
      return r.body.devices?.length === N && r.body.devices.every((d: any) => d.online && d.cpuPercent !== null) ? r.body.devices : undefined;
    }, 20_000, 'every device online with telemetry');
    expect(all[0]).toMatchObject({ id: 'svc-0', online: true, agentVersion: 'sim', profile: 'sim-board', groups: expect.arrayContaining(['canary', 'profile:sim-board']), labels: { site: 'lab' }, memoryTotalBytes: 512 << 20 });
    expect((await api(service.url, 'GET', '/api/v1/devices?group=canary', { token: tokens.read })).body.devices.map((d: any) => d.id)).toEqual(['svc-0']);
    expect((await api(service.url, 'GET', '/api/v1/devices?label=site%3Dlab', { token: tokens.read })).body.devices.length).toBe(1);
    expect((await api(service.url, 'GET', '/api/v1/devices/svc-3', { token: tokens.read })).body.reported.board.model).toBe('Simulated Board');
    expect((await api(service.url, 'GET', '/api/v1/devices/nope', { token: tokens.read })).status).toBe(404);
    // The menus' choices without the list (the dashboard pages it).
    const filters = (await api(service.url, 'GET', '/api/v1/device-filters', { token: tokens.read })).body;
    expect(filters).toMatchObject({ total: N, online: N, profiles: ['sim-board'], labels: expect.arrayContaining(['site=lab']), groups: expect.arrayContaining(['canary', 'profile:sim-board']) });
    expect((await api(service.url, 'GET', '/api/v1/device-filters')).status).toBe(401);
  });

  it('rolls out to every device with the tag resolved to its digest once', async () => {
    const created = await api(service.url, 'POST', '/api/v1/rollouts', { token: tokens.deploy, body: { compose: compose('v1'), all: true, rate: '600/min' } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const pinned = `${registry.host}/app/web@${indexDigest}`;
    expect(created.body.images).toEqual({ web: pinned });
    expect(created.headers.get('location')).toBe(`/api/v1/rollouts/${created.body.id}`);
    // The tag moves right after creation: every device must still get the digest of creation time.
    await pushBusyboxImage(registry, 'app/web', 'v1', { arches: ['amd64'], extraLayers: [Buffer.alloc(1024)] });
    const done = await rolloutDone(created.body.id);
    expect(done).toMatchObject({ state: 'completed', counts: { total: N, applied: N } });
    expect(done.devices.every((d: any) => d.outcome === 'applied' && d.sentAt !== null)).toBe(true);
    // Paged: the same devices in sending order, a page at a time, `next` the cursor.
    const paged: any[] = [];
    for (let after = -1, pages = 0; after !== null; pages++) {
      expect(pages).toBeLessThan(N);
      const page = (await api(service.url, 'GET', `/api/v1/rollouts/${created.body.id}?limit=2&after=${after}`, { token: tokens.read })).body;
      expect(page.devices.length).toBeLessThanOrEqual(2);
      expect(page.counts.total).toBe(N);
      paged.push(...page.devices);
      after = page.next;
    }
    expect(paged).toEqual(done.devices);
    expect(paged.map((d: any) => d.seq)).toEqual(done.devices.map((_: unknown, i: number) => i));
    expect((await api(service.url, 'GET', `/api/v1/rollouts/${created.body.id}?limit=5&outcome=pending`, { token: tokens.read })).body).toMatchObject({ devices: [], next: null });
    const bad = await api(service.url, 'GET', `/api/v1/rollouts/${created.body.id}?limit=5&outcome=done`, { token: tokens.read });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/"outcome"/);
    const device = await api(service.url, 'GET', '/api/v1/devices/svc-2', { token: tokens.read });
    expect(device.body.reported.services.web.image).toBe(pinned);
    for (const d of sim.devices) expect(d.received.length).toBe(1);
  });

  it('keeps telemetry history, events and metrics', async () => {
    const t = await api(service.url, 'GET', '/api/v1/devices/svc-1/telemetry', { token: tokens.read });
    expect(t.body.resolution).toBe('raw');
    expect(t.body.points.length).toBeGreaterThan(2);
    expect(t.body.points[0]).toMatchObject({ cpuPercent: 5, temperatureC: 45.5 });
    const minutes = await api(service.url, 'GET', '/api/v1/devices/svc-1/telemetry?resolution=minute', { token: tokens.read });
    expect(minutes.body.points[0]).toMatchObject({ cpuPercent: 5 });
    const events = await api(service.url, 'GET', '/api/v1/events', { token: tokens.read });
    expect(events.body.events.map((e: any) => e.type)).toContain('rollout-created');
    const metrics = await api(service.url, 'GET', '/metrics', { token: tokens.read });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^berth_fleet_devices 6$/m);
    expect(metrics.body).toMatch(/^berth_device_online\{device="svc-0"\} 1$/m);
    expect(metrics.body).toMatch(/^berth_device_temperature_celsius\{device="svc-0"\} 45.5$/m);
  });

  it('logs a browser in with a cookie and refuses its writes without the CSRF token', async () => {
    const login = await api(service.url, 'POST', '/api/v1/login', { body: { token: tokens.deploy } });
    expect(login.status).toBe(200);
    const setCookie = login.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const cookie = setCookie.split(';')[0]!;
    const session = await api(service.url, 'GET', '/api/v1/session', { headers: { cookie } });
    expect(session.body).toEqual({ scope: 'deploy', csrfToken: login.body.csrfToken });
    const body = { compose: compose('v1'), devices: ['svc-0'] };
    const noCsrf = await api(service.url, 'POST', '/api/v1/rollouts', { headers: { cookie }, body });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body.error.message).toMatch(/X-CSRF-Token/);
    const wrongCsrf = await api(service.url, 'POST', '/api/v1/rollouts', { headers: { cookie, 'x-csrf-token': 'x'.repeat(32) }, body });
    expect(wrongCsrf.status).toBe(403);
    const ok = await api(service.url, 'POST', '/api/v1/rollouts', { headers: { cookie, 'x-csrf-token': login.body.csrfToken }, body });
    expect(ok.status).toBe(201);
    await rolloutDone(ok.body.id);
    expect((await api(service.url, 'POST', '/api/v1/logout', { headers: { cookie, 'x-csrf-token': login.body.csrfToken } })).status).toBe(204);
    expect((await api(service.url, 'GET', '/api/v1/session', { headers: { cookie } })).status).toBe(401);
    expect((await api(service.url, 'POST', '/api/v1/login', { body: { token: 'berth_wrong' } })).status).toBe(401);
  });

  it('streams live updates as Server-Sent Events', async () => {
    const ac = new AbortController();
    const res = await fetch(`${service.url}/api/v1/stream`, { headers: { authorization: `Bearer ${tokens.read}` }, signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const created = await api(service.url, 'POST', '/api/v1/rollouts', { token: tokens.deploy, body: { compose: compose('v1'), devices: ['svc-1'] } });
    const deadline = Date.now() + 15_000;
    while (!/event: rollout\ndata: .*"state":"completed"/.test(text) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    ac.abort();
    expect(text).toMatch(new RegExp(`event: event\\ndata: .*"rollout":"${created.body.id}".*"type":"rollout-created"`));
    expect(text).toMatch(/event: rollout-device\ndata: .*"device":"svc-1".*"outcome":"applied"/);
    expect(text).toMatch(/event: rollout\ndata: .*"state":"completed"/);
  });

  it('berth fleet deploy --server creates the rollout on the service', async () => {
    const file = path.join(dir, 'compose.yaml');
    fs.writeFileSync(file, compose('v1'));
    const refused = await runBerth(['fleet', 'deploy', file, '--server', service.url, '--device', 'svc-2'], { BERTH_FLEET_TOKEN: tokens.read });
    expect(refused.code).toBe(11);
    expect(refused.stderr).toMatch(/scope deploy/);
    const r = await runBerth(['fleet', 'deploy', file, '--server', service.url, '--device', 'svc-2', '--json'], { BERTH_FLEET_TOKEN: tokens.deploy });
    expect(r.code, r.stderr).toBe(0);
    const rollout = JSON.parse(r.stdout);
    expect(rollout.images.web).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect((await rolloutDone(rollout.id)).counts).toMatchObject({ total: 1, applied: 1 });
  });

  it('serves HTTPS with --tls-cert and --tls-key', async () => {
    const key = path.join(dir, 'tls.key');
    const cert = path.join(dir, 'tls.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
    const tlsService = await startService(['--data', path.join(dir, 'data-tls'), '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml'), '--tls-cert', cert, '--tls-key', key]);
    try {
      expect(tlsService.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const status = await new Promise<number>((resolve, reject) => {
        https.get(`${tlsService.url}/api/v1/devices`, { ca: fs.readFileSync(cert) }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        }).on('error', reject);
      });
      expect(status).toBe(401);
    } finally {
      await tlsService.stop();
    }
  });

  it('pauses, resumes and cancels; a kill -9 mid-rollout resumes without sending any device twice', async () => {
    const before = new Map(sim.devices.map((d) => [d.id, d.received.length]));
    // 1 device every 2 s: the service is killed with some devices sent and some not.
    const created = await api(service.url, 'POST', '/api/v1/rollouts', { token: tokens.deploy, body: { compose: compose('v1'), all: true, rate: '30/min' } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const paused = await api(service.url, 'POST', `/api/v1/rollouts/${id}/pause`, { token: tokens.deploy });
    expect(paused.body.state).toBe('paused');
    expect((await api(service.url, 'POST', `/api/v1/rollouts/${id}/pause`, { token: tokens.deploy })).status).toBe(409);
    expect((await api(service.url, 'POST', `/api/v1/rollouts/${id}/resume`, { token: tokens.deploy })).body.state).toBe('running');
    await eventually(async () => {
      const r = await api(service.url, 'GET', `/api/v1/rollouts/${id}`, { token: tokens.read });
      return r.body.counts.applied >= 2 ? r : undefined;
    }, 20_000, 'two devices applied');
    await service.kill9();
    // The counts on the rollout rows equal a count over their devices' rows, as committed at the kill.
    const db = new Database(path.join(dir, 'data', 'fleet.db'), { readonly: true });
    try {
      expectCountsAgree(db.prepare(COUNTS_AGREE_SQL).all() as Array<Record<string, unknown>>, 'after kill -9');
    } finally {
      db.close();
    }
    service = await serve();
    const done = await rolloutDone(id);
    expect(done).toMatchObject({ state: 'completed', counts: { total: N, applied: N } });
    for (const d of sim.devices) expect(d.received.length, d.id).toBe(before.get(d.id)! + 1);
    // Persisted across the restart: every rollout of this file is still listed.
    expect((await api(service.url, 'GET', '/api/v1/rollouts', { token: tokens.read })).body.rollouts.length).toBe(5);

    const third = await api(service.url, 'POST', '/api/v1/rollouts', { token: tokens.deploy, body: { compose: compose('v1'), all: true, rate: '6/min' } });
    await sleep(500);
    const cancelled = await api(service.url, 'POST', `/api/v1/rollouts/${third.body.id}/cancel`, { token: tokens.deploy });
    expect(cancelled.body.state).toBe('cancelled');
    expect(cancelled.body.counts['not-sent']).toBe(N - 1);
    const finished = await rolloutDone(third.body.id);
    expect(finished.counts.applied).toBe(1);
  });
});
