import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Deployer, type DeployEvent } from '../../src/agent/reconcile/deployer.js';
import { Volumes } from '../../src/runtime/volumes.js';
import { detectBoard } from '../../src/board/index.js';
import type { App } from '../../src/compose/model.js';
import { BerthError } from '../../src/errors.js';
import type { ImageService } from '../../src/image/service.js';
import { NetworkService } from '../../src/network/service.js';
import type { DesiredState, ErrorInfo } from '../../src/protocol/types.js';
import type { ContainerEvent } from '../../src/runtime/engine-api.js';
import { DeploymentRecords } from '../../src/store/deployments.js';
import { StateStore } from '../../src/store/store.js';
import { appModel, network, shellCheck, volume, type AppDraft } from '../helpers/app-model.js';
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
/** Runs until stopped, and stops on SIGTERM (an init ignores signals it does not trap). */
const LONG = ['sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"];

/** A deployer over the engine double and a real store, networks and volume directories, with the image present. */
function rig() {
  const root = tmp('berth-deployer-');
  const store = StateStore.open(root);
  cleanups.push(() => store.close());
  const engine = new EngineDouble({ dir: tmp('berth-deployer-engine-'), board, images: [IMAGE] });
  const images = { find: (ref: string) => ({ name: ref }), remove: () => undefined } as unknown as ImageService;
  const records = new DeploymentRecords<DesiredState, ErrorInfo>(store);
  const networks = new NetworkService(store, host);
  const events: DeployEvent[] = [];
  const engineEvents: ContainerEvent[] = [];
  cleanups.push(engine.subscribe((e) => engineEvents.push(e)));
  const deployer = new Deployer({
    engine, networks, volumes: new Volumes(root, () => engine.list()), images, board, records, onEvent: (e) => events.push(e),
    pull: async (ref) => {
      throw new BerthError('notFound', `no pulls in this test (${ref})`);
    },
  });
  /** What happened, in order: container starts and health verdicts, as `start S` / `S healthy`. */
  const timeline = (): string[] => {
    const lines: string[] = [];
    for (const d of events) {
      if (d.type === 'progress' && d.phase === 'start') lines.push(`start ${d.service}`);
      if (d.type === 'progress' && d.phase === 'await-dependency') lines.push(`wait ${d.service}`);
      if (d.type === 'health' && d.health !== 'starting' && d.health !== 'none') lines.push(`${d.service} ${d.health}`);
    }
    return lines;
  };
  const apply = (app: App) => deployer.apply(app, new AbortController().signal);
  return { root, engine, records, networks, deployer, events, engineEvents, timeline, apply };
}

const chain = (check: (service: string) => string = () => 'exit 0'): AppDraft => ({
  services: {
    sensor: { cmd: LONG, healthcheck: shellCheck(check('sensor')) },
    broker: { cmd: LONG, healthcheck: shellCheck(check('broker')), dependsOn: { sensor: { condition: 'service_healthy' } } },
    store: { cmd: LONG, healthcheck: shellCheck(check('store')), dependsOn: { broker: { condition: 'service_healthy' } } },
  },
  networks: [network('iot', 'default')],
  volumes: [volume('iot', 'data')],
  healthWindowMs: 50,
});

describe('Deployer: depends_on', () => {
  it('starts a service_healthy chain in order, each after its dependency passed its check; networks and volumes first', async () => {
    const r = rig();
    const outcome = await r.apply(appModel(chain()));
    expect(outcome).toEqual({ revision: 1, status: 'applied' });
    expect(r.timeline().slice(0, 7)).toEqual([
      'start sensor', 'wait sensor', 'sensor healthy', 'start broker', 'wait broker', 'broker healthy', 'start store',
    ]);
    expect(r.networks.find('iot_default').labels).toEqual({ 'berth.app': 'iot' });
    expect(fs.existsSync(path.join(r.root, 'volumes/iot_data/_data'))).toBe(true);
    const phases = r.events.flatMap((e) => (e.type === 'progress' ? [e.phase] : []));
    expect(phases.indexOf('create-network')).toBeLessThan(phases.indexOf('create'));
  });

  it('a dependency that fails its healthcheck fails the deploy naming it; its dependents never start', async () => {
    const r = rig();
    const outcome = await r.apply(appModel(chain((s) => (s === 'broker' ? 'exit 1' : 'exit 0'))));
    expect(outcome.status).toBe('failed');
    expect(outcome.error?.message).toMatch(/^service broker failed its healthcheck 1 times/);
    expect(r.engine.list().filter((c) => c.state === 'running').map((c) => c.options.labels['berth.service']).sort()).toEqual(['broker', 'sensor']);
    expect(r.engineEvents.filter((e) => e.type === 'start').map((e) => e.name.split('.')[0])).toEqual(['sensor', 'broker']);
  });

  it('service_healthy on a service without a healthcheck is refused naming both', async () => {
    const r = rig();
    const outcome = await r.apply(appModel({ services: { db: { cmd: LONG }, app: { cmd: LONG, dependsOn: { db: { condition: 'service_healthy' } } } } }));
    expect(outcome.error).toMatchObject({ code: 'invalid', message: 'services.app.depends_on.db: condition service_healthy, but db has no healthcheck' });
  });

  it('service_completed_successfully: the dependent starts after the job exited 0, and the window lets the job end', async () => {
    const job = (code: number): AppDraft => ({
      services: { migrate: { cmd: ['sh', '-c', `exit ${code}`] }, app: { cmd: LONG, dependsOn: { migrate: { condition: 'service_completed_successfully' } } } },
      healthWindowMs: 50,
    });
    const ok = rig();
    expect(await ok.apply(appModel(job(0)))).toEqual({ revision: 1, status: 'applied' });
    const order = ok.engineEvents.filter((e) => e.type === 'start' || e.type === 'exit').map((e) => `${e.type} ${e.name.split('.')[0]}`);
    expect(order).toEqual(['start migrate', 'exit migrate', 'start app']);

    const bad = rig();
    const outcome = await bad.apply(appModel(job(3)));
    expect(outcome.status).toBe('failed');
    expect(outcome.error?.message).toBe('service migrate (a dependency of app) exited with 3; app needs it to complete successfully');
    expect(bad.engineEvents.some((e) => e.type === 'start' && e.name.startsWith('app.'))).toBe(false);
  });
});

describe('Deployer: health window', () => {
  it('wakes on the exit event, not at the next poll: a container that dies early fails the deploy at once', async () => {
    const r = rig();
    const app = appModel({ services: { web: { cmd: LONG } }, healthWindowMs: 60_000 });
    const done = r.apply(app);
    await new Promise((res) => setTimeout(res, 50));
    const killedAt = Date.now();
    await r.engine.kill(r.engine.list()[0]!.id);
    const outcome = await done;
    expect(Date.now() - killedAt).toBeLessThan(250);
    expect(outcome.error?.message).toBe('service web exited with 137 within the health window');
  });

  it('a deploy resumed after the agent died runs its window again, even with everything already running (issue 23 item 2)', async () => {
    const r = rig();
    const app = appModel({ services: { web: { cmd: LONG } }, healthWindowMs: 300 });
    // What the killed agent left: the revision recorded as applying, its container created and running.
    r.records.receive(app.source, Date.now());
    const web = r.engine.create(IMAGE, app.services.get('web')!.run);
    await r.engine.start(web.id);
    const done = r.apply(app);
    await new Promise((res) => setTimeout(res, 100));
    await r.engine.kill(web.id);
    const outcome = await done;
    expect(outcome.status).toBe('failed');
    expect(outcome.error?.message).toBe('service web exited with 137 within the health window');
    expect(r.records.lastGood()).toBeUndefined();
  });

  it('a fresh deploy with nothing to start needs no window', async () => {
    const r = rig();
    const app = appModel({ services: { web: { cmd: LONG } }, healthWindowMs: 50 });
    expect(await r.apply(app)).toMatchObject({ status: 'applied' });
    const again = appModel({ services: { web: { cmd: LONG } }, healthWindowMs: 60_000, revision: 2 });
    const started = Date.now();
    expect(await r.apply(again)).toMatchObject({ status: 'applied' });
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('Deployer: app networks', () => {
  it("removes the networks a revision dropped after its old containers; an external missing one fails the deploy naming it", async () => {
    const r = rig();
    const one = appModel({ services: { web: { cmd: LONG, hash: 'h1' } }, networks: [network('iot', 'default'), network('iot', 'old')] });
    expect(await r.apply(one)).toMatchObject({ status: 'applied' });
    const two = appModel({ revision: 2, services: { web: { cmd: LONG, hash: 'h2' } }, networks: [network('iot', 'default')] });
    expect(await r.apply(two)).toMatchObject({ status: 'applied' });
    expect(r.networks.list().map((n) => n.name)).toEqual(['iot_default']);
    const phases = r.events.flatMap((e) => (e.type === 'progress' && e.revision === 2 ? [e.phase] : []));
    expect(phases.slice(-2)).toEqual(['remove', 'remove-network']);

    const three = appModel({ revision: 3, services: { web: { cmd: LONG, hash: 'h3' } }, networks: [network('iot', 'lan', { external: true, hostName: 'plant-lan' })] });
    const failed = await r.apply(three);
    expect(failed).toMatchObject({ status: 'rolled-back', error: { code: 'notFound', message: 'networks.lan: external network plant-lan does not exist' } });
  });
});
