import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgDriver } from '../../src/fleet/service/pg-driver.js';
import { requireBuilt } from '../helpers/dist.js';
import { FleetSim } from '../helpers/fleet-sim.js';
import { api, createToken, startService, type ServiceProcess } from '../helpers/fleet-service.js';
import { COUNTS_AGREE_SQL, expectCountsAgree } from '../helpers/rollout-counts.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startPostgres, type PostgresInstance } from '../helpers/services/postgres.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { testFleetKey } from '../helpers/signing.js';

// Two `berth fleet serve` instances on one real PostgreSQL (a private cluster on a loopback port) and
// one mosquitto: they split one rollout's devices between them, no device is sent twice, and either
// answers for the whole fleet. The single-instance API tests (SQLite) are in fleet-service.test.ts.

const N = 120;
const fleetKey = testFleetKey();
let broker: MosquittoInstance;
let registry: RegistryInstance;
let pg: PostgresInstance;
let sim: FleetSim;
let dir: string;
let db: string;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  requireBuilt();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-service-pg-'));
  fleetKey.writePrivate(dir);
  fs.writeFileSync(path.join(dir, 'fleet.yaml'), 'signingKey: fleet-key.key\n');
  [broker, registry, pg] = await Promise.all([startMosquitto(), startRegistry(), startPostgres()]);
  await pushBusyboxImage(registry, 'app/web', 'v1', { arches: ['amd64'] });
  db = await pg.createDatabase('fleet');
  sim = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'pg', count: N, applyMs: 100 });
  // Both start at once: the schema migration must serialize itself.
  services.push(...(await Promise.all([0, 1].map((i) => startService(['--data', path.join(dir, `data-${i}`), '--db', db, '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml')])))));
}, 180_000);

afterAll(async () => {
  for (const s of services) await s.stop();
  await sim?.stop();
  await Promise.all([registry?.stop(), broker?.stop(), pg?.stop()]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('two fleet service instances on one PostgreSQL', () => {
  it('split a rollout with no device sent twice', async () => {
    const deploy = await createToken('deploy', path.join(dir, 'data-0'), db);
    const [a, b] = services as [ServiceProcess, ServiceProcess];
    // A token made for one is valid on both: they share the database.
    await (async () => {
      for (;;) {
        const r = await api(b.url, 'GET', '/api/v1/devices', { token: deploy });
        if (r.body.devices?.length === N && r.body.devices.every((d: any) => d.online)) return;
        await sleep(200);
      }
    })();
    const created = await api(a.url, 'POST', '/api/v1/rollouts', {
      token: deploy, body: { compose: `services:\n  web:\n    image: ${registry.host}/app/web:v1\n`, all: true, rate: '1200/min' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    let done: any;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const r = await api(b.url, 'GET', `/api/v1/rollouts/${created.body.id}`, { token: deploy });
      if (r.body.finishedAt !== null) {
        done = r.body;
        break;
      }
      await sleep(300);
    }
    expect(done, 'rollout finished').toBeDefined();
    expect(done).toMatchObject({ state: 'completed', counts: { total: N, applied: N } });
    const bySender = new Map<string, number>();
    for (const d of done.devices) bySender.set(d.sentBy, (bySender.get(d.sentBy) ?? 0) + 1);
    expect(bySender.size, JSON.stringify([...bySender])).toBe(2);
    for (const d of sim.devices) expect(d.received, d.id).toEqual([1]);
  });

  it('keeps every rollout\'s counts on its row equal to a count over its rows across kill -9s, and sends no device twice', async () => {
    const deploy = await createToken('deploy', path.join(dir, 'data-0'), db);
    const reader = await PgDriver.open(db);
    const agree = async (when: string): Promise<void> => expectCountsAgree(await reader.all(COUNTS_AGREE_SQL), when);
    try {
      const created = await api(services[0]!.url, 'POST', '/api/v1/rollouts', {
        token: deploy, body: { compose: `services:\n  web:\n    image: ${registry.host}/app/web:v1\n`, all: true, rate: '2400/min' },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      // Each instance in turn killed mid-rollout (sending, settling, committing) and started again.
      for (const [i, ms] of [[0, 400], [1, 900], [0, 600]] as const) {
        await sleep(ms);
        await services[i]!.kill9();
        await agree(`after kill -9 of instance ${i}`);
        // The first kill is mid-rollout: devices are still to be sent.
        if (ms === 400) expect(Number((await reader.all('SELECT n_pending FROM rollouts WHERE id = ?', [created.body.id]))[0]!.n_pending)).toBeGreaterThan(0);
        services[i] = await startService(['--data', path.join(dir, `data-${i}`), '--db', db, '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml')]);
      }
      let done: any;
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline && done === undefined) {
        const r = await api(services[1]!.url, 'GET', `/api/v1/rollouts/${created.body.id}`, { token: deploy });
        if (r.body.finishedAt !== null) done = r.body;
        else await sleep(300);
      }
      expect(done).toMatchObject({ state: 'completed', counts: { total: N, applied: N } });
      await agree('at the end');
      for (const d of sim.devices) expect(d.received, d.id).toEqual([1, 2]);
    } finally {
      await reader.close();
    }
  });
});
