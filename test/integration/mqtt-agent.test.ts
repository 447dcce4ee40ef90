import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, stopProcess, undiciTrap, until, type AgentProcess, type UndiciTrap } from '../helpers/agent-process.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { berthSync } from '../helpers/berth-cli.js';
import { recordMessages, type InboxMessage } from '../helpers/mqtt-inbox.js';
import { testFleetKey } from '../helpers/signing.js';

// The agent's main job end to end: real mosquitto, real registry, real runtime. A fleet-side client
// publishes retained desired states and commands and reads what the device reports.

const DEVICE = 'dev-e2e';
const base = `berth/v1/${DEVICE}`;
let broker: MosquittoInstance;
let registry: RegistryInstance;
let root: string;
let img: string;
let fleet: MqttClient;
let agent: AgentProcess;
const inbox: InboxMessage[] = [];

const fleetKey = testFleetKey();

// The agent runs with the undici trap: every path below (deploys, commands, logs, restarts) would crash it
// on Node 22 if it loaded undici, since bin/berth runs the agent in V8's lite mode (no WebAssembly).
let trap: UndiciTrap;

function startAgent(): AgentProcess {
  return spawnAgent(root, ['--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '1s', '--no-governor', '--backoff-base', '200ms'], fleetKey, {}, trap.env);
}

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);


const messages = (suffix: string, since = 0) => inbox.filter((m) => m.topic === `${base}/${suffix}` && m.at >= since);
const reportedFor = (revision: number, status: string, since = 0) => () => messages('reported', since).find((m) => m.payload?.revision === revision && m.payload?.status === status)?.payload;

/** Publishes a desired state signed as the fleet signs it. */
function publishDesired(desired: { readonly revision: number; readonly [k: string]: unknown }, retain = true): Promise<unknown> {
  return fleet.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, desired), { qos: 1, retain });
}

beforeAll(async () => {
  requireBuilt();
  // The storm test sends 1,000 messages at once: the default 1,000-message queue per client could drop
  // answers to this (slow, busy) test client and make the count flaky.
  [broker, registry] = await Promise.all([startMosquitto({ extraConfig: ['max_queued_messages 100000', 'max_inflight_messages 0'] }), startRegistry()]);
  await pushBusyboxImage(registry, 'fleet/app', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/fleet/app:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-mqtt-agent-'));
  trap = undiciTrap(root);
  fleet = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'fleet-e2e' });
  recordMessages(fleet, inbox);
  await fleet.subscribeAsync(`${base}/#`, { qos: 1 });
  agent = startAgent();
  await until(() => trap.caught() || messages('status').find((m) => m.payload.online === true), 30_000, 'agent online');
  expect(trap.caught()).toBe('');
}, 120_000);

afterAll(async () => {
  if (agent) await stopProcess(agent.proc);
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await fleet?.endAsync();
  await Promise.all([broker?.stop(), registry?.stop()]);
  fs.rmSync(root, { recursive: true, force: true });
});

// sleep as PID 1 ignores SIGTERM: a short grace period keeps replacements quick.
const app = (command: string[], extra: Record<string, unknown> = {}) => ({ image: img, command, stop_grace_period: '1s', ...extra });

describe('berth agent over MQTT', () => {
  it('applies a retained desired state: pulled, running, reported applied, with telemetry flowing', async () => {
    await publishDesired({ revision: 1, services: { web: app(['sleep', '3600']) }, update: { health_window: '1s' } });
    const reported = await until(reportedFor(1, 'applied'), 60_000, 'revision 1 applied');
    expect(reported.services.web).toMatchObject({ state: 'running', image: img, restarts: 0, oomKilled: false });
    expect(reported.services.web.imageDigest).toMatch(/^sha256:/);
    expect(reported.board.profile).toBeTruthy();
    expect(messages('progress').some((m) => m.payload.phase === 'pull')).toBe(true);
    // A sample taken between the container's create and its start says `created`: wait for one after the start.
    const t = await until(() => messages('telemetry').find((m) => m.payload.services?.web?.state === 'running'), 15_000, 'telemetry with web running');
    expect(t.payload.host.memory).toBeDefined();
  });

  it('a new revision replaces only what changed, then removes the old container', async () => {
    const since = Date.now();
    await publishDesired({ revision: 2, services: { web: app(['sleep', '3601']), side: app(['sleep', '3600']) }, update: { health_window: '1s' } });
    await until(reportedFor(2, 'applied', since), 60_000, 'revision 2 applied');
    await until(() => {
      const ps = JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string; state: string }>;
      return ps.length === 2 && ps.every((c) => c.state === 'running') ? ps : undefined;
    }, 15_000, 'only the two new containers left');
  });

  it('ignores an older or equal revision', async () => {
    const since = Date.now();
    await publishDesired({ revision: 1, services: { web: app(['sleep', '1']) } });
    await until(() => agent.lines.find((l) => l.event === 'desired-ignored' && l.revision === 1 && Date.parse(l.time) >= since - 1000), 10_000, 'ignored');
  });

  it('rolls back a broken image to the last good revision and says why', async () => {
    const since = Date.now();
    await publishDesired({ revision: 3, services: { web: { image: `${registry.host}/fleet/missing:nope`, command: ['sleep', '1'] } }, update: { health_window: '1s' } });
    const r = await until(reportedFor(3, 'rolled-back', since), 60_000, 'revision 3 rolled back');
    expect(r.error.message).toMatch(/missing|not found|unknown/i);
    expect(r.services.web.state).toBe('running');
    expect(messages('events', since).some((m) => m.payload.kind === 'deploy-failed' && m.payload.revision === 3)).toBe(true);
  });

  it('rolls back a service that fails its healthcheck', async () => {
    const since = Date.now();
    await publishDesired({
      revision: 4,
      services: { web: app(['sleep', '3602'], { healthcheck: { test: ['CMD', 'false'], interval: '200ms', retries: 2 } }) },
      update: { health_window: '3s' },
    });
    const r = await until(reportedFor(4, 'rolled-back', since), 60_000, 'revision 4 rolled back');
    expect(r.error.message).toMatch(/healthcheck/);
    const ps = JSON.parse(berth('ps', '--json').stdout) as Array<{ name: string }>;
    expect(ps.map((c) => c.name.split('.')[0]).sort()).toEqual(['side', 'web']);
  });

  it('answers commands: ping, logs, restart, unknown service, malformed', async () => {
    const ask = async (id: string, body: string) => {
      // Signed, but for the one that is not even JSON (refused before any signature is read).
      await fleet.publishAsync(`${base}/cmd/${id}`, body.startsWith('{') ? fleetKey.command(DEVICE, id, body) : body, { qos: 1 });
      return (await until(() => messages(`cmd/${id}/result`).at(-1), 20_000, `result of ${id}`)).payload;
    };
    expect(await ask('p1', JSON.stringify({ action: 'ping' }))).toMatchObject({ id: 'p1', status: 'ok', result: 200, data: { pong: true } });
    expect(await ask('r1', JSON.stringify({ action: 'restart', service: 'side' }))).toMatchObject({ status: 'ok', data: { state: 'running' } });
    expect((await ask('l1', JSON.stringify({ action: 'logs', service: 'side', tail: 5 }))).data.lines).toBeInstanceOf(Array);
    expect(await ask('n1', JSON.stringify({ action: 'stop', service: 'nope' }))).toMatchObject({ status: 'error', result: 404 });
    expect(await ask('m1', '{not json')).toMatchObject({ status: 'rejected', result: 400, reason: expect.stringMatching(/not valid JSON/) });
    expect(await ask('m2', JSON.stringify({ action: 'format-disk' }))).toMatchObject({ status: 'rejected', result: 400 });
  });

  it('follows a service\'s logs for the lease it was given, or until logs-stop (docs/protocol.md#log-follow)', async () => {
    const ask = async (id: string, body: object) => {
      await fleet.publishAsync(`${base}/cmd/${id}`, fleetKey.command(DEVICE, id, JSON.stringify(body)), { qos: 1 });
      return (await until(() => messages(`cmd/${id}/result`).at(-1), 20_000, `result of ${id}`)).payload;
    };
    const lease = await ask('fl1', { action: 'logs', service: 'side', tail: 5, follow: 1 });
    expect(lease).toMatchObject({ status: 'ok', data: { lines: expect.any(Array), follow: { until: expect.any(String) } } });
    expect((await until(() => messages('cmd/fl1/logs').find((m) => m.payload.end), 10_000, 'fl1 expired')).payload.end).toBe('expired');
    expect(await ask('fl2', { action: 'logs', service: 'side', follow: 600 })).toMatchObject({ status: 'ok' });
    expect(await ask('fs2', { action: 'logs-stop', session: 'fl2' })).toMatchObject({ status: 'ok', data: { stopped: 'fl2' } });
    expect((await until(() => messages('cmd/fl2/logs').find((m) => m.payload.end), 10_000, 'fl2 stopped')).payload.end).toBe('stopped');
    expect(await ask('fs3', { action: 'logs-stop', session: 'fl2' })).toMatchObject({ status: 'error', result: 404 });
  });

  it('survives 1,000 malformed or hostile messages, answers each, and keeps serving', async () => {
    const hostile = [
      '', 'null', '[]', '{}', '{"revision":"1"}', '{"revision":-5,"services":{}}', '{"revision":1e400,"services":{}}',
      JSON.stringify({ revision: 99, services: { 'bad name!': { image: 'x' } } }),
      JSON.stringify({ revision: 98, services: { web: { image: img, mem_limit: '12q' } } }),
      JSON.stringify({ revision: 97, services: { web: { image: img, devices: ['/dev/does-not-exist'] } } }),
      JSON.stringify({ revision: 96, services: { web: { image: img, labels: { 'berth.service': 'x' } } } }),
      JSON.stringify({ revision: 95, services: { web: { image: img, __proto__: { polluted: true } } } }),
      'x'.repeat(300 * 1024), '\u0000\u0001\u0002', '{"revision":1,"services":{"a":{"image":"a","command":{"$gt":1}}}}',
    ];
    const since = Date.now();
    // Every other round signed: the hostile bodies reach the validator as a compromised fleet key's
    // would; the unsigned ones are refused before it.
    for (let i = 0; i < 1000; i++) {
      const body = hostile[i % hostile.length]!;
      const signed = Math.floor(i / hostile.length) % 2 === 0 && body.length < 200 * 1024;
      if (i % 2 === 0) fleet.publish(`${base}/desired`, signed ? fleetKey.desired(DEVICE, body) : body, { qos: 1 });
      else fleet.publish(`${base}/cmd/h${i}`, signed ? fleetKey.command(DEVICE, `h${i}`, body) : body, { qos: 1 });
    }
    const hostileResults = () => inbox.filter((m) => /\/cmd\/h\d+\/result$/.test(m.topic) && m.at >= since);
    // Commands are answered as they finish, not in order: wait for all of them.
    await until(() => hostileResults().length >= 500 || undefined, 60_000, 'all 500 hostile commands answered');
    await sleep(500);
    const answered = hostileResults();
    expect(answered).toHaveLength(500);
    expect(new Set(answered.map((m) => m.payload.id)).size).toBe(500);
    expect(answered.every((m) => m.payload.status === 'rejected' || m.payload.status === 'error')).toBe(true);
    expect(messages('reported', since).filter((m) => m.payload.status === 'rejected').length).toBeGreaterThan(0);
    expect(agent.proc.exitCode).toBeNull();
    // Still serving valid ones: a real deploy after the storm.
    await publishDesired({ revision: 100, services: { web: app(['sleep', '3603']) }, update: { health_window: '1s' } });
    await until(reportedFor(100, 'applied', since), 60_000, 'revision 100 applied after the storm');
  }, 180_000);

  it('converges after a kill -9 mid-deploy', async () => {
    const since = Date.now();
    await publishDesired({ revision: 101, services: { web: app(['sleep', '3604']), side: app(['sleep', '3605']) }, update: { health_window: '4s' } });
    await until(() => messages('progress', since).find((m) => m.payload.revision === 101 && m.payload.phase === 'await-healthy'), 60_000, 'deploy 101 in its health window');
    await stopProcess(agent.proc, 'SIGKILL');
    agent = startAgent();
    await until(reportedFor(101, 'applied', since), 90_000, 'revision 101 applied after the restart');
    const ps = JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string; state: string }>;
    expect(ps.filter((c) => c.state === 'running')).toHaveLength(2);
  });

  it('between deploys: republishes reported on exits and restarts, and reports crash loops and healthcheck verdicts', async () => {
    const since = Date.now();
    await publishDesired({
      revision: 102,
      services: {
        // Healthy through its window, sick 5 s after it started: only the checks between deploys can see it.
        web: app(['sh', '-c', 'sleep 5; touch /tmp/sick; exec sleep 3600'], { healthcheck: { test: ['CMD-SHELL', 'test ! -e /tmp/sick'], interval: '300ms', retries: 2 } }),
        // Its check passes; each restart starts the check over, which the agent reports without a check result.
        flaky: app(['sh', '-c', 'sleep 2; exit 3'], { restart: 'always', healthcheck: { test: ['CMD', 'true'], interval: '300ms' } }),
      },
      update: { health_window: '1s' },
    });
    const applied = await until(reportedFor(102, 'applied', since), 60_000, 'revision 102 applied');
    expect(applied.services.web.health).toBe('healthy');
    // No new deploy after this: every later `reported` comes from a change on the board. (On a loaded
    // machine flaky may also restart inside the deploy's window: those are reported as applying, before.)
    const appliedAt = messages('reported', since).findIndex((m) => m.payload?.revision === 102 && m.payload?.status === 'applied');
    const restarted = await until(() => messages('reported', since).slice(appliedAt + 1).find((m) => m.payload.revision === 102 && m.payload.services.flaky?.restarts > applied.services.flaky.restarts)?.payload, 20_000, 'reported after flaky restarted');
    expect(restarted.status).toBe('applied');
    const unhealthy = await until(() => messages('events', since).find((m) => m.payload.kind === 'health' && m.payload.service === 'web' && m.payload.health === 'unhealthy')?.payload, 20_000, 'unhealthy event');
    expect(unhealthy).toMatchObject({ failures: 2, exitCode: 1 });
    const over = await until(() => messages('events', since).find((m) => m.payload.kind === 'health' && m.payload.service === 'flaky' && m.payload.health === 'starting')?.payload, 20_000, 'flaky health starting over');
    expect(over).toMatchObject({ reason: 'restarted', failures: 0, container: expect.stringMatching(/^flaky\./) });
    expect(over).not.toHaveProperty('exitCode');
    expect(over).not.toHaveProperty('output');
    await until(() => messages('reported', since).find((m) => m.payload.services.web?.health === 'unhealthy'), 5_000, 'reported unhealthy');
    const loop = await until(() => messages('events', since).find((m) => m.payload.kind === 'crash-loop')?.payload, 60_000, 'crash-loop event');
    expect(loop).toMatchObject({ container: expect.stringMatching(/^flaky\./), restartsInARow: 5, exitCode: 3 });
    expect(messages('events', since).filter((m) => m.payload.kind === 'crash-loop')).toHaveLength(1);
  }, 120_000);

  it('a newer revision supersedes a deploy in progress, which is reported superseded', async () => {
    const since = Date.now();
    await publishDesired({ revision: 103, services: { web: app(['sleep', '3607']) }, update: { health_window: '20s' } });
    await until(() => messages('progress', since).find((m) => m.payload.revision === 103 && m.payload.phase === 'await-healthy'), 60_000, 'deploy 103 in its health window');
    await publishDesired({ revision: 104, services: { web: app(['sleep', '3608']) }, update: { health_window: '1s' } });
    await until(reportedFor(103, 'superseded', since), 20_000, 'revision 103 reported superseded');
    await until(reportedFor(104, 'applied', since), 60_000, 'revision 104 applied');
    const statuses = messages('reported', since).map((m) => `${m.payload.revision}:${m.payload.status}`);
    expect(statuses.indexOf('103:superseded')).toBeLessThan(statuses.indexOf('104:applied'));
    expect(statuses).not.toContain('103:applied');
  }, 120_000);
});

describe('berth agent in lite mode', () => {
  it('ran every test above in V8 lite mode without reaching undici (whose WebAssembly lite mode lacks)', () => {
    expect(fs.readFileSync(`/proc/${agent.proc.pid}/cmdline`, 'utf8').split('\0')).toContain('--lite-mode');
    expect(trap.caught()).toBe('');
  });
});
