import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Deployer, type DeployEvent } from '../../src/agent/reconcile/deployer.js';
import { SupervisorBackend } from '../../src/agent/supervisor-api/backend.js';
import { deviceEnvOf } from '../../src/agent/supervisor-api/device-env.js';
import { supervisorHost } from '../../src/agent/supervisor-api/env.js';
import { handleRequest, type ApiRequest, type RouteContext } from '../../src/agent/supervisor-api/routes.js';
import { detectBoard } from '../../src/board/index.js';
import { normalizeDesired } from '../../src/compose/normalize.js';
import { BerthError } from '../../src/errors.js';
import type { ImageService } from '../../src/image/service.js';
import { NetworkService } from '../../src/network/service.js';
import type { DesiredState, ErrorInfo } from '../../src/protocol/types.js';
import { defaultRunOptions } from '../../src/runtime/options.js';
import { Volumes } from '../../src/runtime/volumes.js';
import { DeploymentRecords } from '../../src/store/deployments.js';
import { StateStore } from '../../src/store/store.js';
import { SupervisorKeyRecords } from '../../src/store/supervisor-keys.js';
import { EngineDouble } from '../helpers/engine-double.js';
import { fixtureHost } from '../helpers/host-tree.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).reverse().forEach((f) => f()));
const tmp = (prefix: string): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};

const IMAGE = 'registry.local/app:v1';
const host = fixtureHost('rpi-zero-2-w');
const board = detectBoard(host);
const LONG = ['sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"];
const LABEL = { 'io.balena.features.supervisor-api': '1' };

/** A deployer with the supervisor API's device variables, over the engine double and a real store. */
function rig() {
  const root = tmp('berth-supervisor-api-');
  const store = StateStore.open(root);
  cleanups.push(() => store.close());
  const engine = new EngineDouble({ dir: tmp('berth-supervisor-engine-'), board, images: [IMAGE] });
  const images = { find: (ref: string) => ({ name: ref }), remove: () => undefined } as unknown as ImageService;
  const records = new DeploymentRecords<DesiredState, ErrorInfo>(store);
  const networks = new NetworkService(store, host);
  const keys = new SupervisorKeyRecords(store);
  const events: DeployEvent[] = [];
  const deployer = new Deployer({
    engine, networks, volumes: new Volumes(root, () => engine.list()), images, board, records, onEvent: (e) => events.push(e),
    deviceEnv: deviceEnvOf(keys, networks),
    pull: async (ref) => {
      throw new BerthError('notFound', `no pulls in this test (${ref})`);
    },
  });
  cleanups.push(() => void Promise.all(engine.list().map((c) => engine.remove(c.id, true))));
  const backend = new SupervisorBackend({ engine, records, apps: deployer.apps, host, version: '9.9.9', deviceName: 'pi-1' });
  const ctx: RouteContext = { backend, keys };
  const deploy = (revision: number, name: string, services: DesiredState['services']) =>
    deployer.apply(normalizeDesired({ revision, name, services, update: { health_window: '0s' } }), new AbortController().signal);
  const call = (method: string, p: string, o: { key?: string; bearer?: string; body?: Record<string, unknown> } = {}) => {
    const req: ApiRequest = { method, path: p, query: new URLSearchParams(o.key !== undefined ? { apikey: o.key } : {}), body: o.body ?? {}, ...(o.bearer !== undefined && { authorization: `Bearer ${o.bearer}` }) };
    return handleRequest(req, ctx);
  };
  /** The environment a service's current container was created with, as K → V (last wins). */
  const envOf = (service: string): Record<string, string> => {
    const c = engine.list().find((x) => x.options.labels['berth.service'] === service)!;
    return Object.fromEntries(c.options.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  };
  return { engine, networks, keys, events, deploy, call, envOf, ctx };
}

describe('supervisor API: what a labelled service gets', () => {
  it('gives balena\'s variables (and RESIN_ aliases) with the key of its own app, only to labelled services', async () => {
    const r = rig();
    expect(await r.deploy(1, 'alpha', { relay: { image: IMAGE, command: LONG, labels: LABEL }, plain: { image: IMAGE, command: LONG } })).toMatchObject({ status: 'applied' });
    const env = r.envOf('relay');
    const alpha = r.keys.identity('alpha');
    const gateway = r.networks.list().find((n) => n.name === 'alpha_default')!.gateway;
    expect(env).toMatchObject({
      BALENA_SUPERVISOR_ADDRESS: `http://${gateway}:48484`, BALENA_SUPERVISOR_HOST: gateway, BALENA_SUPERVISOR_PORT: '48484',
      BALENA_SUPERVISOR_API_KEY: alpha.apiKey, BALENA_APP_ID: String(alpha.appId), BALENA_APP_NAME: 'alpha', BALENA_SERVICE_NAME: 'relay',
      BALENA_DEVICE_UUID: r.keys.deviceUuid(), RESIN_SUPERVISOR_API_KEY: alpha.apiKey, BALENA: '1',
    });
    expect(alpha.apiKey).toMatch(/^[0-9a-f]{64}$/);
    expect(r.envOf('plain').BALENA_SUPERVISOR_API_KEY).toBeUndefined();
    // The key is the app's: asked again (another deploy, another process) it is the same.
    expect(r.keys.identity('alpha')).toEqual(alpha);
  });

  it('host-network containers are told loopback; bridged ones their first network\'s gateway', () => {
    const gw = (n: string) => (n === 'a_net' ? '10.89.7.1' : undefined);
    expect(supervisorHost({ ...defaultRunOptions('x'), network: 'host' }, gw)).toBe('127.0.0.1');
    expect(supervisorHost({ ...defaultRunOptions('x'), network: 'a_net' }, gw)).toBe('10.89.7.1');
    expect(() => supervisorHost({ ...defaultRunOptions('x'), network: 'b_net' }, gw)).toThrow(/network b_net has no gateway/);
  });
});

describe('supervisor API: requests', () => {
  it('answers /ping without a key and everything else only with a valid one (query or Bearer)', async () => {
    const r = rig();
    await r.deploy(1, 'alpha', { relay: { image: IMAGE, command: LONG, labels: LABEL } });
    const key = r.keys.identity('alpha').apiKey;
    expect(await r.call('GET', '/ping')).toEqual({ status: 200, body: 'OK' });
    expect((await r.call('GET', '/v1/device')).status).toBe(401);
    expect((await r.call('GET', '/v1/device', { key: 'f'.repeat(64) })).status).toBe(401);
    const device = await r.call('GET', '/v1/device', { key });
    expect(device.status).toBe(200);
    expect(device.body).toMatchObject({ api_port: 48484, supervisor_version: '9.9.9', update_pending: false, update_failed: false, status: 'Idle', commit: '1' });
    expect((await r.call('GET', '/v2/version', { bearer: key })).body).toEqual({ status: 'success', version: '9.9.9' });
    expect((await r.call('GET', '/v2/device/name', { key })).body).toEqual({ status: 'success', deviceName: 'pi-1' });
    expect((await r.call('GET', '/v1/healthy', { key })).status).toBe(200);
    const state = (await r.call('GET', '/v2/applications/state', { key })).body as Record<string, { appId: number; services: Record<string, { status: string }> }>;
    expect(state.alpha).toMatchObject({ appId: r.keys.identity('alpha').appId, services: { relay: { status: 'Running' } } });
    const status = (await r.call('GET', '/v2/state/status', { key })).body as { appState: string; containers: Array<{ serviceName: string; status: string }> };
    expect(status.appState).toBe('applied');
    expect(status.containers.map((c) => [c.serviceName, c.status])).toEqual([['relay', 'Running']]);
    expect((await r.call('POST', '/v1/reboot', { key })).status).toBe(403);
    expect((await r.call('GET', '/v2/nothing', { key })).status).toBe(404);
  });

  it('restart-, stop- and start-service act on the service\'s container through the engine', async () => {
    const r = rig();
    await r.deploy(1, 'alpha', { relay: { image: IMAGE, command: LONG, labels: LABEL }, db: { image: IMAGE, command: LONG } });
    const { apiKey: key, appId } = r.keys.identity('alpha');
    const db = () => r.engine.list().find((c) => c.options.labels['berth.service'] === 'db')!;
    const started = db().startedAt!;
    await new Promise((res) => setTimeout(res, 5));
    expect(await r.call('POST', `/v2/applications/${appId}/restart-service`, { key, body: { serviceName: 'db' } })).toEqual({ status: 200, body: 'OK' });
    expect(db().state).toBe('running');
    expect(db().startedAt).toBeGreaterThan(started);
    expect(await r.call('POST', `/v2/applications/${appId}/stop-service`, { key, body: { serviceName: 'db' } })).toEqual({ status: 200, body: 'OK' });
    expect(db().state).toBe('exited');
    expect(await r.call('POST', `/v2/applications/${appId}/start-service`, { key, body: { serviceName: 'db' } })).toEqual({ status: 200, body: 'OK' });
    expect(db().state).toBe('running');
    expect((await r.call('POST', `/v2/applications/${appId}/restart-service`, { key, body: { serviceName: 'nope' } })).status).toBe(404);
    expect((await r.call('POST', `/v2/applications/${appId}/restart-service`, { key })).status).toBe(400);
    expect((await r.call('POST', '/v1/restart', { key })).status).toBe(400);
    expect(await r.call('POST', '/v1/restart', { key, body: { appId: String(appId) } })).toEqual({ status: 200, body: 'OK' });
  });

  it('/v1/reboot and /v1/shutdown act only when agent.yaml allows it, after the answer is sent', async () => {
    const r = rig();
    await r.deploy(1, 'alpha', { relay: { image: IMAGE, command: LONG, labels: LABEL } });
    const key = r.keys.identity('alpha').apiKey;
    const off = await r.call('POST', '/v1/reboot', { key });
    expect(off).toMatchObject({ status: 403, body: { Error: expect.stringMatching(/supervisorApi: \{allowPower: true\}/) } });
    const asked: string[] = [];
    const on = await handleRequest({ method: 'POST', path: '/v1/shutdown', query: new URLSearchParams({ apikey: key }), body: {} }, { ...r.ctx, power: (a) => asked.push(a) });
    expect(on).toMatchObject({ status: 202, body: { Data: 'OK', Error: null } });
    expect(asked).toEqual([]);
    on.after!();
    expect(asked).toEqual(['shutdown']);
    expect((await handleRequest({ method: 'POST', path: '/v1/reboot', query: new URLSearchParams(), body: {} }, { ...r.ctx, power: (a) => asked.push(a) })).status).toBe(401);
  });

  it('a key of app A cannot act on app B', async () => {
    const r = rig();
    await r.deploy(1, 'alpha', { relay: { image: IMAGE, command: LONG, labels: LABEL } });
    const alpha = r.keys.identity('alpha');
    expect(await r.deploy(2, 'beta', { relay: { image: IMAGE, command: LONG, labels: LABEL } })).toMatchObject({ status: 'applied' });
    // The renamed app's container was replaced: its key is the new app's.
    expect(r.engine.list().map((c) => c.options.labels['berth.revision'])).toEqual(['2']);
    const beta = r.keys.identity('beta');
    expect(beta.appId).not.toBe(alpha.appId);
    expect(beta.apiKey).not.toBe(alpha.apiKey);
    expect(r.envOf('relay').BALENA_SUPERVISOR_API_KEY).toBe(beta.apiKey);
    const relay = () => r.engine.list().find((c) => c.options.labels['berth.service'] === 'relay')!;
    const started = relay().startedAt;
    for (const p of [`/v2/applications/${beta.appId}/restart-service`, `/v2/applications/${beta.appId}/stop-service`, `/v2/applications/${beta.appId}/restart`]) {
      expect(await r.call('POST', p, { key: alpha.apiKey, body: { serviceName: 'relay' } })).toEqual({ status: 401, body: { status: 'failed', message: 'Unauthorized' } });
    }
    expect((await r.call('POST', '/v1/restart', { key: alpha.apiKey, body: { appId: beta.appId } })).status).toBe(401);
    expect(relay().state).toBe('running');
    expect(relay().startedAt).toBe(started);
    // Nor see it: alpha's view of the applications is empty while beta runs.
    expect((await r.call('GET', '/v2/applications/state', { key: alpha.apiKey })).body).toEqual({});
    expect(await r.call('POST', `/v2/applications/${beta.appId}/restart-service`, { key: beta.apiKey, body: { serviceName: 'relay' } })).toEqual({ status: 200, body: 'OK' });
  });
});
