import { describe, expect, it } from 'vitest';
import { plan, type ManagedContainer, type Present, type Step } from '../../src/agent/reconcile/plan.js';
import { containerName } from '../../src/compose/labels.js';
import { appModel, network, volume, type AppDraft } from '../helpers/app-model.js';

const present = (containers: ManagedContainer[] = [], o: Partial<Present> = {}): Present => ({ containers, networks: [], volumes: new Set(), ...o });
const running = (service: string, hash = 'h1', isRunning = true): ManagedContainer => ({ id: `id-${service}-${hash}`, name: containerName(service, hash), service, hash, running: isRunning });
const label = (s: Step): string => {
  switch (s.kind) {
    case 'create-network': case 'remove-network': return `${s.kind} ${s.hostName}`;
    case 'create-volume': return `${s.kind} ${s.hostName}`;
    case 'await-dependency': return `${s.kind} ${s.service} ${s.condition} for ${s.dependent}`;
    case 'await-healthy': return `${s.kind} ${s.services.join(',')}${s.oneShot.length ? ` one-shot ${s.oneShot.join(',')}` : ''}`;
    default: return `${s.kind} ${s.service}`;
  }
};
const steps = (p: Present, d: AppDraft, strategy: 'download-then-kill' | 'kill-then-download' = 'download-then-kill', resumed = false): string[] =>
  plan(p, appModel(d), { strategy, resumed }).steps.map(label);

const chain: AppDraft = {
  services: {
    store: { dependsOn: { broker: { condition: 'service_healthy' } } },
    broker: { dependsOn: { sensor: { condition: 'service_healthy' } } },
    sensor: {},
  },
};

describe('planner: networks and volumes', () => {
  it('creates the missing ones before anything else, external ones that exist are used as they are', () => {
    const d: AppDraft = {
      services: { web: {} },
      networks: [network('iot', 'default'), network('iot', 'back'), network('iot', 'lan', { external: true, hostName: 'lan' })],
      volumes: [volume('iot', 'data'), volume('iot', 'cache'), volume('iot', 'shared', { external: true, hostName: 'shared' })],
    };
    const p = present([], { networks: [{ name: 'lan' }, { name: 'iot_back', app: 'iot' }], volumes: new Set(['shared', 'iot_cache']) });
    expect(steps(p, d)).toEqual(['create-volume iot_data', 'create-network iot_default', 'pull web', 'create web', 'start web', 'await-healthy web']);
    expect(steps(p, d, 'kill-then-download')[0]).toBe('create-volume iot_data');
  });

  it('refuses an external network or volume that does not exist, naming it and its key', () => {
    const net: AppDraft = { services: { web: {} }, networks: [network('iot', 'lan', { external: true, hostName: 'plant-lan' })] };
    expect(() => steps(present(), net)).toThrow(expect.objectContaining({ category: 'notFound', message: 'networks.lan: external network plant-lan does not exist' }));
    const vol: AppDraft = { services: { web: {} }, volumes: [volume('iot', 'db', { external: true, hostName: 'pgdata' })] };
    expect(() => steps(present(), vol)).toThrow(/volumes\.db: external volume pgdata does not exist/);
  });

  it("removes the app's own networks the revision no longer has, after the old containers; never one made by hand", () => {
    const d: AppDraft = { services: { web: { hash: 'h2' } }, networks: [network('iot', 'default')] };
    const p = present([running('web', 'h1')], {
      networks: [{ name: 'iot_default', app: 'iot' }, { name: 'iot_old', app: 'iot' }, { name: 'legacy_default', app: 'legacy' }, { name: 'mine' }, { name: 'bridge' }],
    });
    expect(steps(p, d)).toEqual([
      'pull web', 'create web', 'stop web', 'start web', 'await-healthy web', 'remove web', 'remove-network iot_old', 'remove-network legacy_default',
    ]);
  });

  it('nothing to do when everything runs as desired and every network is there', () => {
    const d: AppDraft = { services: { web: {} }, networks: [network('iot', 'default')] };
    expect(plan(present([running('web')], { networks: [{ name: 'iot_default', app: 'iot' }] }), appModel(d), { strategy: 'download-then-kill' })).toEqual({ steps: [], unchanged: ['web'] });
  });
});

describe('planner: depends_on', () => {
  it('creates and starts in dependency order, waiting for service_healthy before each dependent', () => {
    expect(steps(present(), chain)).toEqual([
      'pull sensor', 'pull broker', 'pull store', 'create sensor', 'create broker', 'create store',
      'start sensor', 'await-dependency sensor service_healthy for broker', 'start broker', 'await-dependency broker service_healthy for store', 'start store',
      'await-healthy sensor,broker,store',
    ]);
  });

  it('service_started only orders; service_completed_successfully waits for the job, which the window lets exit', () => {
    const d: AppDraft = {
      services: {
        app: { dependsOn: { migrate: { condition: 'service_completed_successfully' }, db: { condition: 'service_started' } } },
        migrate: { dependsOn: { db: { condition: 'service_started' } } },
        db: {},
      },
    };
    expect(steps(present(), d).slice(6)).toEqual([
      'start db', 'start migrate', 'await-dependency migrate service_completed_successfully for app', 'start app', 'await-healthy db,migrate,app one-shot migrate',
    ]);
  });

  it('stops dependents before their dependencies, gone services first', () => {
    const d: AppDraft = { services: { store: { hash: 'h2', dependsOn: { broker: { condition: 'service_started' } } }, broker: { hash: 'h2' } } };
    const p = present([running('broker'), running('store'), running('gone')]);
    expect(steps(p, d).filter((s) => s.startsWith('stop'))).toEqual(['stop gone', 'stop store', 'stop broker']);
    expect(steps(p, d, 'kill-then-download').slice(0, 3)).toEqual(['stop gone', 'stop store', 'stop broker']);
  });

  it('restart: true restarts an unchanged dependent when its dependency is replaced; without it the dependent keeps running', () => {
    const d = (restart: boolean): AppDraft => ({ services: { broker: { hash: 'h2' }, store: { dependsOn: { broker: { condition: 'service_healthy', restart } } } } });
    const p = present([running('broker'), running('store')]);
    expect(steps(p, d(true))).toEqual([
      'pull broker', 'create broker', 'stop store', 'stop broker', 'start broker', 'await-dependency broker service_healthy for store', 'start store',
      'await-healthy broker,store', 'remove broker',
    ]);
    const kept = plan(p, appModel(d(false)), { strategy: 'download-then-kill' });
    expect(kept.unchanged).toEqual(['store']);
    expect(kept.steps.map(label)).toEqual(['pull broker', 'create broker', 'stop broker', 'start broker', 'await-healthy broker', 'remove broker']);
  });

  it('refuses a cycle and a missing required dependency; skips a missing optional one', () => {
    const cycle: AppDraft = { services: { a: { dependsOn: { b: { condition: 'service_started' } } }, b: { dependsOn: { a: { condition: 'service_started' } } } } };
    expect(() => steps(present(), cycle)).toThrow(expect.objectContaining({ category: 'invalid', message: 'services.a.depends_on: dependency cycle a → b → a' }));
    const missing: AppDraft = { services: { a: { dependsOn: { db: { condition: 'service_healthy' } } } } };
    expect(() => steps(present(), missing)).toThrow(/services\.a\.depends_on: service "db" is not in the app/);
    const optional: AppDraft = { services: { a: { dependsOn: { db: { condition: 'service_healthy', required: false } } } } };
    expect(steps(present(), optional)).toEqual(['pull a', 'create a', 'start a', 'await-healthy a']);
  });
});

describe('planner: a resumed deploy (issue 23 item 2)', () => {
  it('runs the health window over every service even when everything already runs', () => {
    const p = present([running('sensor'), running('broker'), running('store')]);
    expect(steps(p, chain)).toEqual([]);
    expect(steps(p, chain, 'download-then-kill', true)).toEqual(['await-healthy sensor,broker,store']);
  });

  it('keeps the old containers, the rollback target, until after that window', () => {
    const p = present([running('web', 'h2'), running('web', 'h1', false)]);
    expect(steps(p, { services: { web: { hash: 'h2' } } }, 'download-then-kill', true)).toEqual(['await-healthy web', 'remove web']);
  });
});
