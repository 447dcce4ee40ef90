import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFleetKey } from '../helpers/signing.js';
import { spawnAgent, stopProcess, until, type AgentProcess } from '../helpers/agent-process.js';
import { berthSync } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { recordMessages, type InboxMessage } from '../helpers/mqtt-inbox.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

// Issue 23 item 2, as it was found: the agent killed -9 inside a deploy's health window, against a real
// mosquitto and registry. The resumed deploy must run a health window again rather than find the new
// container running, wait on nothing and report `applied` (which made the broken revision the last good
// one and removed the rollback target).

const DEVICE = 'dev-resume';
const base = `berth/v1/${DEVICE}`;
let broker: MosquittoInstance;
let registry: RegistryInstance;
let root: string;
let img: string;
let fleet: MqttClient;
let agent: AgentProcess | undefined;
const inbox: InboxMessage[] = [];

/** The fleet's key: the agent takes only signed desired states. */
const fleetKey = testFleetKey();
const startAgent = (): AgentProcess => spawnAgent(root, ['--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '60s', '--no-governor'], fleetKey);
const messages = (suffix: string, since = 0) => inbox.filter((m) => m.topic === `${base}/${suffix}` && m.at >= since);
const reportedFor = (revision: number, status: string, since = 0) => () => messages('reported', since).find((m) => m.payload?.revision === revision && m.payload?.status === status)?.payload;
const publishDesired = (desired: object): Promise<unknown> => fleet.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, desired), { qos: 1, retain: true });

beforeAll(async () => {
  requireBuilt();
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'resume/app', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/resume/app:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-agent-resume-'));
  fleet = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'fleet-resume' });
  recordMessages(fleet, inbox);
  await fleet.subscribeAsync([`${base}/reported`, `${base}/status`, `${base}/progress`], { qos: 1 });
}, 120_000);

afterAll(async () => {
  if (agent) await stopProcess(agent.proc);
  const left = JSON.parse(berthSync(['--root', root, 'ps', '-a', '--json']).stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berthSync(['--root', root, 'rm', '-f', ...left.map((c) => c.name)]);
  await fleet?.endAsync();
  await Promise.all([broker?.stop(), registry?.stop()]);
  fs.rmSync(root, { recursive: true, force: true });
});

describe('a deploy resumed after kill -9 of the agent (issue 23 item 2)', () => {
  it('runs a health window again: a service that dies within it is rolled back, never applied', async () => {
    agent = startAgent();
    await until(() => messages('status').find((m) => m.payload.online === true), 30_000, 'agent online');
    const web = { image: img, command: ['sleep', '3600'], stop_grace_period: '1s' };
    await publishDesired({ revision: 1, services: { web }, update: { health_window: '0s' } });
    await until(reportedFor(1, 'applied'), 60_000, 'revision 1 applied');

    // Revision 2's service runs 6 s and fails: inside its 10 s window.
    const since = Date.now();
    await publishDesired({ revision: 2, services: { web: { ...web, command: ['sh', '-c', 'sleep 6; exit 1'] } }, update: { health_window: '10s' } });
    await until(() => messages('progress', since).find((m) => m.payload.revision === 2 && m.payload.phase === 'await-healthy'), 60_000, 'revision 2 in its health window');
    await sleep(1200);
    await stopProcess(agent.proc, 'SIGKILL');

    const restarted = Date.now();
    agent = startAgent();
    const outcome = await until(() => messages('reported', restarted).find((m) => m.payload?.revision === 2 && m.payload?.status !== 'applying')?.payload, 90_000, 'revision 2 finished');
    expect(outcome).toMatchObject({ revision: 2, status: 'rolled-back', error: { message: 'service web exited with 1 within the health window' } });
    // The rollback target survived: revision 1's container runs again, and is the only one left.
    const ps = JSON.parse(berthSync(['--root', root, 'ps', '-a', '--json']).stdout) as Array<{ name: string; state: string; labels?: Record<string, string> }>;
    expect(ps.map((c) => c.state)).toEqual(['running']);
    expect(Date.now() - restarted).toBeGreaterThan(3000);
  }, 180_000);
});
