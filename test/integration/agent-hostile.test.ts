import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, stopProcess, until, type AgentProcess } from '../helpers/agent-process.js';
import { berthSync } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { recordMessages, type InboxMessage } from '../helpers/mqtt-inbox.js';
import { testFleetKey } from '../helpers/signing.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

// Issue 23's hostile-payload findings, each against a real agent process, a real mosquitto and a real
// registry: invalid desired states must not move `reported` backwards or block later deploys (also
// across a kill -9), values the runtime cannot take are rejected up front, and a huge publish never
// reaches the agent.

const DEVICE = 'dev-hostile';
const base = `berth/v1/${DEVICE}`;
let broker: MosquittoInstance;
let registry: RegistryInstance;
let root: string;
let img: string;
let fleet: MqttClient;
let agent: AgentProcess;
const inbox: InboxMessage[] = [];

const fleetKey = testFleetKey();
const startAgent = (): AgentProcess => spawnAgent(root, ['--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '60s', '--no-governor'], fleetKey);
const messages = (suffix: string, since = 0) => inbox.filter((m) => m.topic === `${base}/${suffix}` && m.at >= since);
const reportedFor = (revision: number, status: string, since = 0) => () => messages('reported', since).find((m) => m.payload?.revision === revision && m.payload?.status === status)?.payload;
const rejectedEvent = (since: number, revision?: number) => () =>
  messages('events', since).find((m) => m.payload.kind === 'desired-rejected' && m.payload.revision === revision)?.payload;
/** An object is signed as the fleet would sign it (hostile bodies from a compromised key); a string goes as is, unsigned. */
const publishDesired = (desired: object | string, retain = true): Promise<unknown> =>
  fleet.publishAsync(`${base}/desired`, typeof desired === 'string' ? desired : fleetKey.desired(DEVICE, desired), { qos: 1, retain });
const app = (extra: Record<string, unknown> = {}) => ({ image: img, command: ['sleep', '3600'], stop_grace_period: '1s', ...extra });
/** Peak resident memory of a process (kB), from the kernel's own high-water mark. */
const peakRssKb = (pid: number): number => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

beforeAll(async () => {
  requireBuilt();
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'hostile/app', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/hostile/app:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-agent-hostile-'));
  fleet = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'fleet-hostile' });
  recordMessages(fleet, inbox);
  // Not desired: the 50 MB publish below should not come back to this process either.
  await fleet.subscribeAsync([`${base}/reported`, `${base}/events`, `${base}/status`], { qos: 1 });
  agent = startAgent();
  await until(() => messages('status').find((m) => m.payload.online === true), 30_000, 'agent online');
  await publishDesired({ revision: 10, services: { web: app() }, update: { health_window: '0s' } });
  await until(reportedFor(10, 'applied'), 60_000, 'revision 10 applied');
}, 120_000);

afterAll(async () => {
  if (agent) await stopProcess(agent.proc);
  const left = JSON.parse(berthSync(['--root', root, 'ps', '-a', '--json']).stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berthSync(['--root', root, 'rm', '-f', ...left.map((c) => c.name)]);
  await fleet?.endAsync();
  await Promise.all([broker?.stop(), registry?.stop()]);
  fs.rmSync(root, { recursive: true, force: true });
});

describe('hostile desired states (issue 23)', () => {
  it('an invalid desired state with an older, never-seen revision leaves the retained reported alone', async () => {
    const since = Date.now();
    await publishDesired({ revision: 7, services: { web: app({ mem_limit: '12q' }) } });
    expect(await until(rejectedEvent(since, 7), 15_000, 'desired-rejected event for 7')).toMatchObject({ error: { code: 'invalid' } });
    expect(messages('reported', since).filter((m) => m.payload.revision === 7)).toEqual([]);
  });

  it('values the runtime cannot take are rejected up front, naming the key, instead of rolled back', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ image: `${img}\u0000` }, /services\.web\.image/],
      [{ image: `${img}\n` }, /services\.web\.image/],
      [{ user: 'root\u0000' }, /services\.web\.user/],
      [{ user: 'daemon\u001b[2J' }, /services\.web\.user/],
      [{ working_dir: 'relative/dir' }, /services\.web\.working_dir/],
      [{ mem_limit: 1e308 }, /services\.web\.mem_limit/],
      [{ pids_limit: 1e20 }, /services\.web\.pids_limit/],
      [{ cpus: '1'.repeat(29) }, /services\.web\.cpus/],
    ];
    let revision = 11;
    for (const [fields, key] of cases) {
      const since = Date.now();
      await publishDesired({ revision, services: { web: app(fields) }, update: { health_window: '0s' } });
      const r = await until(() => messages('reported', since).find((m) => m.payload.revision === revision && m.payload.status !== 'applying')?.payload, 60_000, `revision ${revision} finished`);
      expect({ revision, status: r.status, message: r.error?.message }).toEqual({ revision, status: 'rejected', message: expect.stringMatching(key) });
      revision++;
    }
  }, 120_000);

  it('a 50 MB publish with a high revision never reaches the agent: its peak RSS stays put', async () => {
    const pid = agent.proc.pid!;
    const before = peakRssKb(pid);
    const since = Date.now();
    const huge = `{"revision":2147483000,"services":{},"pad":"${'x'.repeat(50 * 1024 * 1024)}"}`;
    await publishDesired(huge, false);
    // Messages on a topic arrive in order: once this one is answered, the big one was handled or dropped.
    await publishDesired('{"marker":true}', false);
    await until(rejectedEvent(since, undefined), 30_000, 'the marker answered');
    const grownMiB = (peakRssKb(pid) - before) / 1024;
    console.log(`agent peak RSS: ${(before / 1024).toFixed(1)} MiB before, +${grownMiB.toFixed(1)} MiB after a 50 MB publish`);
    expect(grownMiB).toBeLessThan(16);
    expect(messages('reported', since).filter((m) => m.payload.revision === 2147483000)).toEqual([]);
  }, 60_000);

  it('invalid messages with the highest revisions do not disable later deploys, also after a kill -9', async () => {
    const since = Date.now();
    // Out of the schema's range: not a usable revision at all, so only an event.
    await publishDesired({ revision: Number.MAX_SAFE_INTEGER, services: { web: app({ mem_limit: '12q' }) } });
    await until(rejectedEvent(since, undefined), 15_000, 'desired-rejected event without a revision');
    // The highest valid revision, with an invalid body: reported rejected (it is newer), but not seen.
    await publishDesired({ revision: 2147483647, services: { web: app({ mem_limit: '12q' }) } });
    await until(reportedFor(2147483647, 'rejected', since), 15_000, 'revision 2147483647 rejected');

    await publishDesired({ revision: 30, services: { web: app({ command: ['sleep', '3601'] }) }, update: { health_window: '0s' } });
    await until(reportedFor(30, 'applied', since), 60_000, 'revision 30 applied after the hostile ones');

    await stopProcess(agent.proc, 'SIGKILL');
    agent = startAgent();
    await until(() => messages('status', since).find((m) => m.payload.online === true && m.payload.agent.pid === agent.proc.pid), 30_000, 'agent online again');
    await publishDesired({ revision: 31, services: { web: app({ command: ['sleep', '3602'] }) }, update: { health_window: '0s' } });
    await until(reportedFor(31, 'applied', since), 60_000, 'revision 31 applied after the restart');
  }, 180_000);
});
