import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, stopProcess, until, type AgentProcess } from '../helpers/agent-process.js';
import { berthSync, runBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { recordMessages, type InboxMessage } from '../helpers/mqtt-inbox.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { testFleetKey } from '../helpers/signing.js';

// Issue 17, balena's io.balena.features.supervisor-api: a real agent on a real mosquitto deploys a
// signed compose-shaped app carrying the label; from INSIDE its containers (busybox wget) the app
// calls the agent's supervisor API on the address it was given, with the key it was given, and the
// test checks what the calls did on the device.

const DEVICE = 'dev-balena';
const base = `berth/v1/${DEVICE}`;
const fleetKey = testFleetKey();
let broker: MosquittoInstance;
let registry: RegistryInstance;
let root: string;
let dir: string;
let img: string;
let keyFile: string;
let observer: MqttClient;
let agent: AgentProcess;
const inbox: InboxMessage[] = [];

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);
const containerOf = (service: string): string => {
  const all = JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string }>;
  return all.find((c) => c.name.startsWith(`${service}.`))!.name;
};
const inspect = (service: string): Record<string, any> => (JSON.parse(berth('inspect', containerOf(service)).stdout) as Array<Record<string, any>>)[0]!;
/** Runs a shell line inside the service's container, where its balena variables are set. */
const inside = (service: string, line: string) => berth('exec', containerOf(service), 'sh', '-c', line);
/** Like `inside`, until the line succeeds (the API listens once the container is up, a moment after it started). */
const insideOk = async (service: string, line: string) => until(() => {
  const r = inside(service, line);
  return r.code === 0 && r;
}, 15_000, `${service}: ${line}`);

const APP = `name: balena-like
services:
  relay:
    image: IMG
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    labels:
      io.balena.features.supervisor-api: '1'
      io.balena.features.balena-socket: '1'
  hostside:
    image: IMG
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    network_mode: host
    labels:
      io.balena.features.supervisor-api: 1
  worker:
    image: IMG
    command: ["sleep", "3600"]
    stop_grace_period: 1s
x-berth:
  update:
    health_window: 0s
`;

beforeAll(async () => {
  requireBuilt();
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'balena/app', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/balena/app:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-supapi-root-'));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-supapi-'));
  keyFile = fleetKey.writePrivate(dir);
  observer = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'supapi-observer' });
  recordMessages(observer, inbox);
  await observer.subscribeAsync(`${base}/#`, { qos: 1 });
  agent = spawnAgent(root, ['--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '60s', '--no-governor'], fleetKey, { deployPolicy: { hostNetwork: true } });
  await until(() => inbox.find((m) => m.topic === `${base}/status` && m.payload.online === true), 30_000, 'agent online');
  const file = path.join(dir, 'docker-compose.yml');
  fs.writeFileSync(file, APP.replaceAll('IMG', img));
  const r = await runBerth(['fleet', 'deploy', file, '--device', DEVICE, '--json', '--timeout', '90s', '--broker', broker.url, '--signing-key', keyFile]);
  const summary = JSON.parse(r.stdout || '{}') as { devices?: Array<Record<string, any>> };
  expect(summary.devices?.[0], r.stderr).toMatchObject({ outcome: 'applied' });
  // berth fleet deploy warned about the label it cannot honour, naming service and label.
  expect(r.stderr).toMatch(/services\.relay\.labels\.io\.balena\.features\.balena-socket: accepted as a plain label; no engine socket/);
}, 180_000);

afterAll(async () => {
  if (agent) await stopProcess(agent.proc);
  if (root) {
    const left = JSON.parse(berthSync(['--root', root, 'ps', '-a', '--json']).stdout || '[]') as Array<{ name: string }>;
    if (left.length > 0) berthSync(['--root', root, 'rm', '-f', ...left.map((c) => c.name)]);
  }
  await observer?.endAsync();
  await Promise.all([broker?.stop(), registry?.stop()]);
  for (const d of [root, dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('balena supervisor API from inside the containers (issue 17)', () => {
  it('a bridged container reaches /ping on its network\'s gateway; a host-network one on loopback', async () => {
    const env = Object.fromEntries((inspect('relay').Config.Env as string[]).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    expect(env.BALENA_SUPERVISOR_HOST).toMatch(/^10\.\d+\.\d+\.1$/);
    expect(env).toMatchObject({ BALENA_SUPERVISOR_PORT: '48484', BALENA_APP_NAME: 'balena-like', BALENA_SERVICE_NAME: 'relay', RESIN_SUPERVISOR_API_KEY: env.BALENA_SUPERVISOR_API_KEY });
    expect((await insideOk('relay', 'busybox wget -qO- "$BALENA_SUPERVISOR_ADDRESS/ping"')).stdout).toBe('OK');
    expect(inside('hostside', 'echo "$BALENA_SUPERVISOR_ADDRESS"').stdout.trim()).toBe('http://127.0.0.1:48484');
    expect((await insideOk('hostside', 'busybox wget -qO- "$BALENA_SUPERVISOR_ADDRESS/ping"')).stdout).toBe('OK');
    // Only those two addresses are listened on: never a wildcard, so the API stays on the host.
    const hosts = agent.lines.filter((l) => l.event === 'supervisor-api-listening').map((l) => l.host as string);
    expect(new Set(hosts)).toEqual(new Set(['127.0.0.1', env.BALENA_SUPERVISOR_HOST]));
    // The unlabelled service gets none of it.
    expect((inspect('worker').Config.Env as string[]).some((e) => e.startsWith('BALENA_SUPERVISOR'))).toBe(false);
  });

  it('/v1/device answers with the key (query or Bearer); a wrong key gets 401', async () => {
    const device = JSON.parse((await insideOk('relay', 'busybox wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v1/device?apikey=$BALENA_SUPERVISOR_API_KEY"')).stdout) as Record<string, unknown>;
    const version = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    expect(device).toMatchObject({ api_port: 48484, supervisor_version: version, update_pending: false, status: 'Idle', commit: '1' });
    expect(device.os_version).toEqual(expect.any(String));
    const bearer = inside('hostside', 'busybox wget -qO- --header "Authorization: Bearer $BALENA_SUPERVISOR_API_KEY" "$BALENA_SUPERVISOR_ADDRESS/v2/version"');
    expect(JSON.parse(bearer.stdout)).toEqual({ status: 'success', version });
    const wrong = inside('relay', 'busybox wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v1/device?apikey=0000$BALENA_SUPERVISOR_API_KEY" 2>&1');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).toMatch(/401 Unauthorized/);
    const none = inside('relay', 'busybox wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v2/applications/state" 2>&1');
    expect(none.stdout).toMatch(/401 Unauthorized/);
    // The key is never logged by the agent.
    const key = inside('relay', 'echo -n "$BALENA_SUPERVISOR_API_KEY"').stdout;
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(agent.lines)).not.toContain(key);
  });

  it('restart-service restarts the named service of its own app; another app id is refused', async () => {
    const before = inspect('worker').State.StartedAt as string;
    const ok = inside('relay', 'busybox wget -qO- --post-data "serviceName=worker" "$BALENA_SUPERVISOR_ADDRESS/v2/applications/$BALENA_APP_ID/restart-service?apikey=$BALENA_SUPERVISOR_API_KEY"');
    expect(ok.stdout).toBe('OK');
    const after = inspect('worker');
    expect(after.State.Running).toBe(true);
    expect(Date.parse(after.State.StartedAt as string)).toBeGreaterThan(Date.parse(before));
    const state = JSON.parse(inside('relay', 'busybox wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v2/applications/state?apikey=$BALENA_SUPERVISOR_API_KEY"').stdout) as Record<string, any>;
    expect(state['balena-like'].services).toMatchObject({ relay: { status: 'Running' }, worker: { status: 'Running' }, hostside: { status: 'Running' } });
    const other = inside('relay', 'busybox wget -qO- --post-data "serviceName=worker" "$BALENA_SUPERVISOR_ADDRESS/v2/applications/$((BALENA_APP_ID + 1))/restart-service?apikey=$BALENA_SUPERVISOR_API_KEY" 2>&1');
    expect(other.stdout).toMatch(/401 Unauthorized/);
    expect(inspect('worker').State.StartedAt).toBe(after.State.StartedAt);
  });

  it('the agent\'s deploy events carry the balena-socket warning', () => {
    const warning = inbox.find((m) => m.topic === `${base}/events` && m.payload.kind === 'deploy-warning');
    expect(warning?.payload).toMatchObject({ revision: 1, message: expect.stringMatching(/^services\.relay\.labels\.io\.balena\.features\.balena-socket: accepted as a plain label/) });
  });
});
