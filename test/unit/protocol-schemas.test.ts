import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AppCache } from '../../src/compose/cache.js';
import { SERVICE_LABEL } from '../../src/compose/labels.js';
import { ConditionWatch } from '../../src/agent/conditions.js';
import type { HealthDetail } from '../../src/agent/health-monitor.js';
import { MqttAgent } from '../../src/agent/mqtt/agent.js';
import { MessageIntake } from '../../src/agent/mqtt/intake.js';
import { DEFAULT_DEPLOY_POLICY } from '../../src/agent/policy.js';
import { FleetTrust } from '../../src/agent/trust.js';
import { TrustRecords } from '../../src/store/trust.js';
import { testFleetKey } from '../helpers/signing.js';
import { connectBroker } from '../../src/protocol/connection.js';
import { DeviceTopics } from '../../src/protocol/topics.js';
import type { DesiredState, ErrorInfo, ServiceHealth } from '../../src/protocol/types.js';
import { Deployer, type PullFn } from '../../src/agent/reconcile/deployer.js';
import { DeployQueue } from '../../src/agent/reconcile/queue.js';
import { Volumes } from '../../src/runtime/volumes.js';
import { NetworkService } from '../../src/network/service.js';
import { Spool } from '../../src/agent/spool.js';
import { buildReported } from '../../src/agent/state.js';
import { TelemetryLoop } from '../../src/agent/telemetry-loop.js';
import { decodeThrottled } from '../../src/agent/telemetry/index.js';
import { detectBoard } from '../../src/board/index.js';
import { BerthError } from '../../src/errors.js';
import type { ImageService } from '../../src/image/service.js';
import { DeploymentRecords } from '../../src/store/deployments.js';
import { SpoolTable } from '../../src/store/spool.js';
import { StateStore } from '../../src/store/store.js';
import { REPO } from '../helpers/dist.js';
import { EngineDouble } from '../helpers/engine-double.js';
import { fixtureHost } from '../helpers/host-tree.js';

// The JSON Schemas in src/protocol/schemas describe both directions (desired and command: what the
// fleet sends, precompiled for the agent; the rest: what the device sends). These tests produce real messages
// with the agent's own code (buildReported, TelemetryLoop, MqttAgent over a fake MQTT client, the
// Deployer over an in-memory engine) and validate each against its schema, so the documentation cannot
// drift from the code unnoticed.

const SCHEMA_DIR = path.join(REPO, 'src/protocol/schemas');
const validators = new Map<string, ValidateFunction>();

beforeAll(() => {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false }) // `not: {required: [x]}` names properties defined elsewhere;
  const files = fs.readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.json')).sort();
  for (const f of files) ajv.addSchema(JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, f), 'utf8')) as object, f);
  for (const f of files) validators.set(f.replace(/\.json$/, ''), ajv.getSchema(f)!);
});

function expectValid(schema: string, message: unknown): void {
  const validate = validators.get(schema);
  if (!validate) throw new Error(`no schema src/protocol/schemas/${schema}.json`);
  // Through JSON, exactly as it goes over the wire (undefined fields disappear).
  const wire = JSON.parse(JSON.stringify(message)) as unknown;
  const ok = validate(wire);
  expect(ok, `${schema}: ${JSON.stringify(validate.errors, null, 1)}\n${JSON.stringify(wire)}`).toBe(true);
}

function expectInvalid(schema: string, message: unknown): void {
  expect(validators.get(schema)!(message), `${schema} accepted ${JSON.stringify(message)}`).toBe(false);
}

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).reverse().forEach((f) => f()));
const tmp = (prefix: string): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
};
const openStore = (): StateStore => {
  const s = StateStore.open(tmp('berth-proto-store-'));
  cleanups.push(() => s.close());
  return s;
};

const board = detectBoard(fixtureHost('rpi-zero-2-w'));

/** The ContainerEngine test double (held to the real engine's contract by the conformance suite). */
const makeEngine = (): EngineDouble => new EngineDouble({ dir: tmp('berth-proto-engine-'), board });

/** Images present locally: `find` succeeds for these and throws notFound otherwise, like ImageService. */
function fakeImages(present: string[]) {
  const images = {
    find(ref: string) {
      if (!present.includes(ref)) throw new BerthError('notFound', `no image ${ref}`);
      return { name: ref };
    },
    list: () => present.map((name) => ({ name })),
    remove: () => undefined,
    prune: () => ({ blobs: 0, snapshots: 0, bytes: 0 }),
  };
  return images as unknown as ImageService;
}

/** Stands in for mqtt.js's client: records what is published, with its options. */
class FakeClient extends EventEmitter {
  connected = false;
  readonly sent: Array<{ topic: string; payload: any; qos: number; retain: boolean }> = [];
  subscriptions: string[] = [];

  async subscribeAsync(topics: string[]): Promise<unknown[]> {
    this.subscriptions.push(...topics);
    return [];
  }

  publish(topic: string, payload: string, opts: { qos?: number; retain?: boolean } = {}, cb?: (err?: Error) => void): this {
    this.sent.push({ topic, payload: JSON.parse(payload) as unknown, qos: opts.qos ?? 0, retain: opts.retain ?? false });
    cb?.();
    return this;
  }

  async publishAsync(topic: string, payload: string, opts: { qos?: number; retain?: boolean } = {}): Promise<undefined> {
    this.publish(topic, payload, opts);
    return undefined;
  }

  async endAsync(): Promise<void> {
    this.connected = false;
  }

  connect(): void {
    this.connected = true;
    this.emit('connect');
  }

  deliver(topic: string, payload: string): void {
    this.emit('message', topic, Buffer.from(payload));
  }
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

const DEVICE = 'pi-0042';
const topics = new DeviceTopics(DEVICE);
const fleet = testFleetKey();
/** A desired state as the fleet sends it: signed for this device and its revision. */
const signedDesired = (d: DesiredState): string => fleet.desired(DEVICE, d);

/** One agent over the fake client: the real MqttAgent, Deployer, DeployQueue, records and spool. */
function agentRig(opts: { spoolMaxBytes?: number } = {}) {
  const store = openStore();
  const engine = makeEngine();
  const images = fakeImages(['registry.local/app:v1', 'registry.local/app:v2']);
  const records = new DeploymentRecords<DesiredState, ErrorInfo>(store);
  const client = new FakeClient();
  const pull: PullFn = async (ref) => {
    throw new BerthError('notFound', `registry.local: manifest unknown for ${ref}`);
  };
  let mqtt: MqttAgent | undefined;
  const networks = new NetworkService(store, fixtureHost('rpi-zero-2-w'));
  const deployer = new Deployer({ engine, networks, volumes: new Volumes(tmp('berth-proto-volumes-'), () => engine.list()), images, board, records, pull, onEvent: (e) => mqtt?.onDeployEvent(e) });
  const queue = new DeployQueue(deployer, () => undefined);
  const spool = new Spool(new SpoolTable(store), opts.spoolMaxBytes !== undefined ? { maxBytes: opts.spoolMaxBytes } : {});
  const intervals: number[] = [];
  const trust = new FleetTrust(fleet.key.publicKey, new TrustRecords(store));
  const intake = new MessageIntake({ deviceId: DEVICE, trust, allowUnsigned: false, policy: DEFAULT_DEPLOY_POLICY, now: Date.now });
  mqtt = new MqttAgent({
    client: client as unknown as MqttClient, topics, engine, images, board, records, deployer, queue, spool, intake, trust,
    version: '0.1.0', log: () => undefined, setTelemetryInterval: (ms) => intervals.push(ms),
  });
  const sent = (t: string) => client.sent.filter((m) => m.topic === `${topics.base}/${t}`);
  return { client, agent: mqtt, engine, store, records, queue, spool, sent, intervals };
}

const app = (command: string[]) => ({ image: 'registry.local/app:v1', command, stop_grace_period: '1s', mem_limit: '64m' });

describe('src/protocol/schemas', () => {
  it('are draft-07 schemas ajv compiles in strict mode (but for strictRequired), one per message of either direction', () => {
    expect([...validators.keys()].sort()).toEqual(['command', 'command-result', 'desired', 'events', 'progress', 'reported', 'signed', 'status', 'telemetry']);
    for (const f of fs.readdirSync(SCHEMA_DIR)) {
      const s = JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, f), 'utf8')) as { $schema: string; $id: string };
      expect(s.$schema).toBe('http://json-schema.org/draft-07/schema#');
      expect(s.$id).toBe(`https://berth.dev/schemas/v1/${f}`);
    }
  });
});

describe('reported (buildReported)', () => {
  it('before any deployment, applied, rejected with the error, and with a missing and an exited service', async () => {
    const store = openStore();
    const engine = makeEngine();
    const records = new DeploymentRecords<DesiredState, ErrorInfo>(store);
    const health = new Map<string, 'none' | 'starting' | 'healthy' | 'unhealthy'>();
    const apps = new AppCache();

    const empty = buildReported(engine, records, apps, board, '0.1.0', health);
    expect(empty).toMatchObject({ revision: 0, status: 'applied', services: {} });
    expectValid('reported', empty);

    const desired: DesiredState = { revision: 7, services: { web: app(['httpd', '-f']), worker: app(['sleep', '1']), db: { image: 'registry.local/db:1' } } };
    records.receive(desired, Date.now());
    const { serviceRunOptions } = await import('../../src/compose/service.js');
    const web = engine.create('registry.local/app:v1', serviceRunOptions('web', desired.services.web!, 7));
    await engine.start(web.id);
    const worker = engine.create('registry.local/app:v1', serviceRunOptions('worker', desired.services.worker!, 7));
    await engine.start(worker.id);
    engine.oomKill(worker.id);
    for (let i = 0; i < 3; i++) {
      await engine.start(worker.id, { countRestart: true });
      engine.oomKill(worker.id);
    }
    health.set('web', 'healthy');
    expectValid('reported', buildReported(engine, records, apps, board, '0.1.0', health));
    records.finish(7, 'applied', Date.now());
    const applied = buildReported(engine, records, apps, board, '0.1.0', health);
    expect(applied.services).toMatchObject({
      web: { state: 'running', health: 'healthy', restarts: 0 },
      worker: { state: 'exited', exitCode: 137, restarts: 3, oomKilled: true },
      db: { state: 'missing' },
    });
    expectValid('reported', applied);

    const error = { code: 'invalid', result: 400, message: 'desired state: /services/web/mem_limit must match pattern' };
    records.reject(8, error, Date.now());
    const rejected = buildReported(engine, records, apps, board, '0.1.0', health, { revision: 8, status: 'rejected', error });
    expect(rejected.services.web?.state).toBe('running'); // still the last good revision's services
    expectValid('reported', rejected);
    expectValid('reported', buildReported(engine, records, apps, board, '0.1.0', health));
  });

  it('the schema refuses what the code never sends', () => {
    const ok = { revision: 1, status: 'applied', services: {}, agent: { version: '0.1.0' }, board: { profile: 'p', model: 'm' }, time: new Date().toISOString() };
    expectValid('reported', ok);
    expectInvalid('reported', { ...ok, status: 'done' });
    expectInvalid('reported', { ...ok, error: { code: 'nope', result: 400, message: 'x' } });
    expectInvalid('reported', { ...ok, time: 'yesterday' });
  });
});

describe('telemetry (TelemetryLoop over TelemetrySampler)', () => {
  it('a sample from a Raspberry Pi fixture host with running, exited and cgroup-less services; live and replayed', async () => {
    const store = openStore();
    const engine = makeEngine();
    const { serviceRunOptions } = await import('../../src/compose/service.js');
    const spec = { image: 'registry.local/app:v1' };
    const running = engine.create('registry.local/app:v1', serviceRunOptions('web', spec, 1));
    await engine.start(running.id);
    const exited = engine.create('registry.local/app:v1', serviceRunOptions('worker', spec, 1));
    await engine.start(exited.id);
    await engine.stop(exited.id, 0);
    const noCgroup = engine.create('registry.local/app:v1', serviceRunOptions('side', spec, 1));
    await engine.start(noCgroup.id);
    fs.rmSync(engine.cgroupDir(noCgroup.id), { recursive: true }); // running, but no cgroup directory to read
    engine.create('registry.local/app:v1', { ...serviceRunOptions('ignored', spec, 1), labels: {} }); // not a service

    const loop = new TelemetryLoop({
      engine, board, host: fixtureHost('rpi-zero-2-w'), stateRoot: tmp('berth-proto-root-'), intervalMs: 1000, emit: () => undefined, onCondition: () => undefined,
    });
    const first = loop.sampleOnce();
    expect(Object.keys(first.services).sort()).toEqual(['side', 'web', 'worker']);
    expect(first.services.worker).toMatchObject({ measured: false, state: 'exited' });
    expect(first.services.side?.measured).toBe(false);
    expect(first.host.temperatureC).toBe(47.2);
    expectValid('telemetry', first);
    fs.writeFileSync(path.join(engine.cgroupDir(running.id), 'cpu.stat'), 'usage_usec 999999\n');
    const second = loop.sampleOnce();
    expect(second.sampleCpuUs).toBeGreaterThanOrEqual(0);
    expect(second.services.web?.cpuPercent).toBeGreaterThan(0);
    expectValid('telemetry', second);
    expectValid('telemetry', { ...second, replayed: true });
    expect(running.options.labels[SERVICE_LABEL]).toBe('web');

    for (const host of ['rpi-4b-4g', 'rpi-zero-w', 'unknown-arm64', 'hybrid-amd64', 'beaglebone-black', 'rpi-5-8g']) {
      const l = new TelemetryLoop({ engine, board, host: fixtureHost(host), stateRoot: tmp('berth-proto-root-'), intervalMs: 1000, emit: () => undefined, onCondition: () => undefined });
      l.sampleOnce();
      expectValid('telemetry', l.sampleOnce());
    }
  });
});

describe('messages the MQTT front end publishes (MqttAgent over a fake client)', () => {
  it('status on connect, reported, a rejected desired, progress, events, a rollback, and status on stop', async () => {
    const rig = agentRig();
    rig.client.connect();
    await settle();
    expect(rig.client.subscriptions).toEqual([topics.topic('desired'), topics.commandFilter]);
    const [online] = rig.sent('status');
    expect(online).toMatchObject({ retain: true, qos: 1, payload: { online: true, agent: { version: '0.1.0', pid: process.pid } } });
    expectValid('status', online!.payload);
    expectValid('reported', rig.sent('reported')[0]!.payload);

    // A bad desired state: answered with a retained `reported` {status: rejected} naming the cause.
    rig.client.deliver(topics.topic('desired'), signedDesired({ revision: 3, services: { web: { image: 'x', mem_limit: '12q' } } }));
    rig.client.deliver(topics.topic('desired'), '{not json');
    // A new revision that is invalid is reported rejected; a payload without a usable revision leaves
    // `reported` alone and becomes a desired-rejected event.
    const rejected = rig.sent('reported').filter((m) => m.payload.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ retain: true, payload: { revision: 3, error: { code: 'invalid', result: 400 } } });
    for (const m of rejected) expectValid('reported', m.payload);
    const unusable = rig.sent('events').find((m) => m.payload.kind === 'desired-rejected');
    expect(unusable?.payload).toMatchObject({ error: { code: 'invalid', message: expect.stringMatching(/not valid JSON/) } });
    expectValid('events', unusable!.payload);

    // A good one: progress for each step, applied. Then a broken image: rollback, deploy-failed event.
    rig.client.deliver(topics.topic('desired'), signedDesired({ revision: 4, services: { web: app(['sleep', '10']), side: app(['sleep', '11']) }, update: { health_window: '0s' } }));
    await rig.queue.idle();
    await settle();
    rig.client.deliver(topics.topic('desired'), signedDesired({ revision: 5, services: { web: app(['sleep', '12']) }, update: { health_window: '0s' } }));
    await rig.queue.idle();
    rig.client.deliver(topics.topic('desired'), signedDesired({ revision: 6, services: { web: { image: 'registry.local/missing:1' } }, update: { health_window: '0s' } }));
    await rig.queue.idle();
    await settle();

    const progress = rig.sent('progress');
    expect(progress.every((m) => m.qos === 0 && !m.retain)).toBe(true);
    expect(new Set(progress.map((m) => m.payload.phase))).toEqual(new Set(['create-network', 'pull', 'create', 'stop', 'start', 'await-healthy', 'remove', 'rollback']));
    for (const m of progress) expectValid('progress', m.payload);

    const statuses = rig.sent('reported').map((m) => `${m.payload.revision}:${m.payload.status}`);
    expect(statuses).toEqual(expect.arrayContaining(['4:applying', '4:applied', '5:applied', '6:applying', '6:rolled-back']));
    for (const m of rig.sent('reported')) {
      expect(m).toMatchObject({ retain: true, qos: 1 });
      expectValid('reported', m.payload);
    }
    const failed = rig.sent('events').find((m) => m.payload.kind === 'deploy-failed');
    expect(failed).toMatchObject({ qos: 1, retain: false, payload: { revision: 6, status: 'rolled-back', error: { code: 'notFound', result: 404 } } });
    expectValid('events', failed!.payload);

    // Supervisor and governor events as run.ts forwards them.
    rig.agent.event({ kind: 'exited', container: 'web.0123456789ab', exitCode: 137, oomKilled: true, state: 'exited' });
    rig.agent.event({ kind: 'restart-failed', container: 'web.0123456789ab', error: 'runtime: crun start failed' });
    rig.agent.event({
      kind: 'governor-freeze', container: 'hog.0123456789ab', reason: 'memory pressure 21.7% ≥ 20%: freezing the largest best-effort container',
      pressurePct: 21.7, avg10: 7.1, highPct: 20, lowPct: 5, parentMemoryBytes: 300_000_000, parentMemoryMax: 326_107_136, priority: 'best-effort', containerMemoryBytes: 120_000_000, msSinceStallOnset: 2050,
    });
    rig.agent.event({ kind: 'crash-loop', container: 'flaky.0123456789ab', restartsInARow: 5, exitCode: 3, oomKilled: false });
    // Health as the monitor reports it (typed, so the schema and HealthDetail cannot part): a check's verdict, and a restart's.
    const verdicts: Array<[ServiceHealth, HealthDetail]> = [
      ['unhealthy', { container: 'web.0123456789ab', failures: 2, exitCode: 1, output: '' }],
      ['starting', { container: 'web.0123456789ab', failures: 0, reason: 'restarted' }],
    ];
    for (const [health, detail] of verdicts) rig.agent.event({ kind: 'health', service: 'web', health, ...detail });
    // Host conditions as the telemetry loop finds them (run.ts forwards kind + the rest).
    const watch = new ConditionWatch();
    const disk = { path: '/var/lib/berth', totalBytes: 8 * 1024 ** 3, freeBytes: 4 * 1024 ** 3, totalInodes: 10, freeInodes: 5 };
    const conditionSample = (freeBytes: number, throttled: string, oomKills: number) => ({
      time: new Date().toISOString(), host: { disk: { ...disk, freeBytes }, throttling: decodeThrottled(throttled)! },
      services: { web: { measured: true, state: 'running' as const, restarts: 0, oomKills } },
    });
    watch.check(conditionSample(4 * 1024 ** 3, '0x0', 0));
    const conditions = watch.check(conditionSample(100 * 1024 ** 2, '0x50005', 1));
    expect(conditions.map((c) => c.kind).sort()).toEqual(['low-disk', 'oom-kill', 'throttled', 'under-voltage']);
    for (const { kind, ...detail } of conditions) rig.agent.event({ kind, ...detail });
    for (const m of rig.sent('events')) expectValid('events', m.payload);
    // A verdict comes from a check (its exit code and output) or from a restart (a reason), never neither or both.
    const health = { kind: 'health', service: 'web', container: 'web.0123456789ab', failures: 0, time: new Date().toISOString() };
    expectValid('events', { ...health, health: 'healthy', exitCode: 0, output: 'ok' });
    expectInvalid('events', { ...health, health: 'healthy', exitCode: 0 });
    expectInvalid('events', { ...health, health: 'starting' });
    expectInvalid('events', { ...health, health: 'starting', reason: 'restarted', exitCode: 0, output: 'restarted' });
    expectInvalid('events', { ...health, health: 'unhealthy', reason: 'restarted' });

    await rig.agent.stop();
    const offline = rig.sent('status').at(-1)!;
    expect(offline).toMatchObject({ retain: true, payload: { online: false } });
    expectValid('status', offline.payload);
  });

  it('command results: ok with data, error with the category result code, rejected', async () => {
    const rig = agentRig();
    rig.client.connect();
    await settle();
    // Signed as the fleet sends them, but for the unparseable and oversized ones, which fail before any signature is read.
    const ask = async (id: string, body: string) => {
      rig.client.deliver(`${topics.base}/cmd/${id}`, body.startsWith('{"') ? fleet.command(DEVICE, id, body) : body);
      await settle();
      const r = rig.client.sent.filter((m) => m.topic === topics.commandResult(id));
      expect(r, `one result for ${id}`).toHaveLength(1);
      expect(r[0]).toMatchObject({ qos: 1, retain: false });
      expectValid('command-result', r[0]!.payload);
      return r[0]!.payload;
    };
    expect(await ask('p1', JSON.stringify({ action: 'ping' }))).toMatchObject({ id: 'p1', status: 'ok', result: 200, data: { pong: true } });
    expect(await ask('t1', JSON.stringify({ action: 'set-telemetry-interval', interval: '30s' }))).toMatchObject({ status: 'ok', data: { intervalMs: 30_000 } });
    expect(rig.intervals).toEqual([30_000]);
    expect(await ask('t2', JSON.stringify({ action: 'set-telemetry-interval', interval: '10ms' }))).toMatchObject({ status: 'rejected', result: 400 });
    expect(await ask('pr', JSON.stringify({ action: 'prune' }))).toMatchObject({ status: 'ok' });
    expect(await ask('n1', JSON.stringify({ action: 'restart', service: 'nope' }))).toMatchObject({ status: 'error', result: 404 });
    expect(await ask('m1', '{not json')).toMatchObject({ status: 'rejected', result: 400 });
    expect(await ask('m2', JSON.stringify({ action: 'format-disk' }))).toMatchObject({ status: 'rejected', result: 400 });
    expect(await ask('m3', JSON.stringify({ action: 'stop' }))).toMatchObject({ status: 'rejected', result: 400 });
    expect(await ask('big', 'x'.repeat(256 * 1024 + 1))).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/over the 262144-byte limit/) });
    // No valid result topic for this id: no answer at all.
    rig.client.deliver(`${topics.base}/cmd/bad id`, JSON.stringify({ action: 'ping' }));
    await settle();
    expect(rig.client.sent.filter((m) => m.topic.includes('bad id'))).toHaveLength(0);
  });

  it('telemetry live at QoS 0; spooled while offline, replayed at QoS 1 with replayed: true after a spool-dropped event', async () => {
    const rig = agentRig({ spoolMaxBytes: 4096 });
    const store = rig.store;
    const loop = new TelemetryLoop({ engine: rig.engine, board, host: fixtureHost('rpi-4b-4g'), stateRoot: tmp('berth-proto-root-'), intervalMs: 1000, emit: () => undefined, onCondition: () => undefined });
    for (let i = 0; i < 10; i++) rig.agent.telemetry(loop.sampleOnce()); // offline: ~1 KiB each, over the 4 KiB cap
    rig.agent.event({ kind: 'exited', container: 'web.0123456789ab', exitCode: 1, oomKilled: false, state: 'exited' });
    expect(rig.sent('telemetry')).toHaveLength(0);
    expect(rig.spool.dropped()).toBeGreaterThan(0);
    rig.client.connect();
    await settle();
    const dropped = rig.sent('events').find((m) => m.payload.kind === 'spool-dropped');
    expect(dropped).toMatchObject({ qos: 1, payload: { dropped: expect.any(Number) } });
    expectValid('events', dropped!.payload);
    const replayed = rig.client.sent.filter((m) => m.payload.replayed === true);
    expect(replayed.length).toBeGreaterThan(0);
    for (const m of replayed) {
      expect(m.qos).toBe(1);
      expectValid(m.topic.endsWith('/telemetry') ? 'telemetry' : 'events', m.payload);
    }
    expect(replayed.at(-1)!.topic).toBe(topics.topic('events')); // oldest first: the event came last
    rig.agent.telemetry(loop.sampleOnce());
    const live = rig.sent('telemetry').at(-1)!;
    expect(live).toMatchObject({ qos: 0, retain: false });
    expect(live.payload.replayed).toBeUndefined();
    expectValid('telemetry', live.payload);
  });

  it('drops counted while the spool-dropped event is being published are kept for the next one (issue 23 item 7)', async () => {
    const rig = agentRig({ spoolMaxBytes: 600 });
    const pad = (n: number) => ({ n, pad: 'x'.repeat(280) });
    for (let n = 0; n < 4; n++) rig.agent.telemetry(pad(n)); // offline, over the cap: 2 dropped
    expect(rig.spool.dropped()).toBe(2);
    const publishAsync = rig.client.publishAsync.bind(rig.client);
    rig.client.publishAsync = async (topic, payload, opts) => {
      // While the broker takes the spool-dropped event, telemetry keeps coming and goes to the spool (replay is on): 3 more drops.
      if ((JSON.parse(payload) as { kind?: string }).kind === 'spool-dropped') for (let n = 10; n < 13; n++) rig.agent.telemetry(pad(n));
      return publishAsync(topic, payload, opts);
    };
    rig.client.connect();
    await settle();
    expect(rig.sent('events').find((m) => m.payload.kind === 'spool-dropped')?.payload).toMatchObject({ dropped: 2 });
    expect(rig.spool.dropped()).toBe(3);
  });

  it('the last will: retained {online: false} on status, in an MQTT 5 persistent session as berth-<deviceId>', () => {
    const client = connectBroker({ url: 'mqtt://127.0.0.1:1' }, topics, () => undefined);
    try {
      const o = client.options;
      expect(o).toMatchObject({ protocolVersion: 5, clientId: `berth-${DEVICE}`, clean: false, reconnectPeriod: 0, properties: { sessionExpiryInterval: 604_800 } });
      expect(o.will).toMatchObject({ topic: topics.topic('status'), qos: 1, retain: true });
      expectValid('status', JSON.parse(String(o.will!.payload)));
    } finally {
      client.end(true);
    }
  });
});

describe('progress of an app with networks, volumes and depends_on', () => {
  it('takes the new steps with what each names, and refuses them without it', () => {
    const time = new Date().toISOString();
    expectValid('progress', { revision: 2, phase: 'create-network', network: 'iot_default', time });
    expectValid('progress', { revision: 2, phase: 'remove-network', network: 'iot_old', time });
    expectValid('progress', { revision: 2, phase: 'create-volume', volume: 'iot_data', time });
    expectValid('progress', { revision: 2, phase: 'await-dependency', service: 'broker', time });
    expectInvalid('progress', { revision: 2, phase: 'create-network', time });
    expectInvalid('progress', { revision: 2, phase: 'create-volume', network: 'iot_data', time });
    expectInvalid('progress', { revision: 2, phase: 'await-dependency', time });
    expectInvalid('progress', { revision: 2, phase: 'start', service: 'web', network: 'iot_default', time });
  });
});
