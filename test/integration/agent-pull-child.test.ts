import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, stopProcess, undiciTrap, until, type AgentProcess, type UndiciTrap } from '../helpers/agent-process.js';
import { berthSync } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { recordMessages, type InboxMessage } from '../helpers/mqtt-inbox.js';
import { startFaultProxy, type FaultProxy } from '../helpers/services/fault-proxy.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { testFleetKey } from '../helpers/signing.js';

// The agent (V8 lite mode) pulls each image in a child process of its own, `berth agent-pull`, with full
// JIT (src/agent/pull-child). Real mosquitto, a real registry behind the fault proxy (to hold a pull in the
// middle of a layer), the real runtime.

const DEVICE = 'dev-pull-child';
const base = `berth/v1/${DEVICE}`;
let broker: MosquittoInstance;
let registry: RegistryInstance;
let proxy: FaultProxy;
let root: string;
let fleet: MqttClient;
let agent: AgentProcess;
let trap: UndiciTrap;
/** The layer of random bytes each big image ends with (10-14 MiB, a size each, so each its own blob: a pull can be caught in its middle). */
const bigLayer = new Map<string, string>();
const inbox: InboxMessage[] = [];
const fleetKey = testFleetKey();

const startAgent = (): AgentProcess => spawnAgent(root, ['--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '30s', '--no-governor'], fleetKey, {}, trap.env);
const berth = (...args: string[]) => berthSync(['--root', root, ...args]);
const messages = (suffix: string, since = 0) => inbox.filter((m) => m.topic === `${base}/${suffix}` && m.at >= since);
const reportedFor = (revision: number, status: string, since = 0) => () => messages('reported', since).find((m) => m.payload?.revision === revision && m.payload?.status === status)?.payload;
const publishDesired = (desired: { readonly revision: number; readonly [k: string]: unknown }) => fleet.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, desired), { qos: 1, retain: true });
const app = (image: string, n: number) => ({ image, command: ['sh', '-c', `trap 'exit 0' TERM; sleep ${3600 + n} & wait`], stop_grace_period: '1s' });
const img = (repo: string) => `${proxy.host}/pc/${repo}:v1`;

/** The agent's children running `berth agent-pull` (bin/berth execs node: the pid is node's). */
function pullChildren(agentPid: number): Array<{ pid: number; argv: string[] }> {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${d}/status`, 'utf8'))?.[1]);
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      return ppid === agentPid && argv.includes('agent-pull') ? [{ pid: Number(d), argv }] : [];
    } catch {
      return []; // gone meanwhile
    }
  });
}
const alive = (pid: number): boolean => fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
const partialOf = (digest: string): string => path.join(root, 'content', 'ingest', digest.replace(':', '-'));
const size = (file: string): number => (fs.existsSync(file) ? fs.statSync(file).size : 0);

beforeAll(async () => {
  requireBuilt();
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  proxy = await startFaultProxy(registry.url);
  for (const [repo, mib] of [['one', 10], ['two', 12], ['three', 14]] as const) {
    const built = await pushBusyboxImage(registry, `pc/${repo}`, 'v1', { arches: ['amd64'], bigLayerMB: mib });
    bigLayer.set(repo, built.manifests[0]!.layers.at(-1)!.digest);
  }
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-agent-pull-child-'));
  trap = undiciTrap(root);
  fleet = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'fleet-pull-child' });
  recordMessages(fleet, inbox);
  await fleet.subscribeAsync(`${base}/#`, { qos: 1 });
  agent = startAgent();
  await until(() => trap.caught() || messages('status').find((m) => m.payload.online === true), 30_000, 'agent online');
}, 180_000);

afterAll(async () => {
  if (agent) await stopProcess(agent.proc);
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await fleet?.endAsync();
  await Promise.all([proxy?.stop(), broker?.stop(), registry?.stop()]);
  fs.rmSync(root, { recursive: true, force: true });
});

describe('berth agent pulls in a child process', () => {
  it('pulls in `berth agent-pull` with full JIT (no lite mode), which exits after; the agent runs in lite mode', async () => {
    const since = Date.now();
    // The big layer's download waits 2 s: long enough to see the child at work.
    proxy.setFaults([{ method: 'GET', path: new RegExp(`/blobs/${bigLayer.get('one')}`), nth: 1, delayMs: 2000 }]);
    await publishDesired({ revision: 1, services: { web: app(img('one'), 1) }, update: { health_window: '0s' } });
    const children = await until(() => pullChildren(agent.proc.pid!).length > 0 && pullChildren(agent.proc.pid!), 30_000, 'a pull child');
    expect(children).toHaveLength(1);
    expect(children[0]!.argv).not.toContain('--lite-mode');
    expect(fs.readFileSync(`/proc/${agent.proc.pid}/cmdline`, 'utf8').split('\0')).toContain('--lite-mode');
    await until(reportedFor(1, 'applied', since), 60_000, 'revision 1 applied');
    // The child's progress reached the fleet through the agent (bytes of the pull step).
    expect(messages('progress', since).some((m) => m.payload.phase === 'pull' && m.payload.image === img('one'))).toBe(true);
    await until(() => !alive(children[0]!.pid), 10_000, 'the pull child gone');
    expect(JSON.parse(berth('images', '--json').stdout).map((i: { name: string }) => i.name)).toContain(img('one'));
    expect(trap.caught()).toBe('');
  }, 120_000);

  it("a pull's failure keeps its category and result code (notFound, 404)", async () => {
    const since = Date.now();
    await publishDesired({ revision: 2, services: { web: app(`${proxy.host}/pc/nope:v1`, 2) }, update: { health_window: '0s' } });
    const done = await until(() => messages('reported', since).find((m) => m.payload?.revision === 2 && m.payload.status !== 'applying')?.payload, 60_000, 'revision 2 done');
    expect(done.status).toBe('rolled-back');
    expect(done.error).toMatchObject({ code: 'notFound', result: 404, message: expect.stringContaining('pc/nope') });
  }, 120_000);

  it('a newer revision stops the pull of a superseded one: the child exits, the partial blob stays for a resume', async () => {
    const since = Date.now();
    const blob = new RegExp(`/blobs/${bigLayer.get('two')}`);
    proxy.setFaults([{ method: 'GET', path: blob, nth: 1, dropAfterBytes: 3_000_000 }, { method: 'GET', path: blob, nth: 2, delayMs: 60_000 }]);
    await publishDesired({ revision: 3, services: { web: app(img('two'), 3) }, update: { health_window: '0s' } });
    const [child] = await until(() => pullChildren(agent.proc.pid!).length > 0 && pullChildren(agent.proc.pid!), 30_000, 'a pull child');
    await until(() => size(partialOf(bigLayer.get('two')!)) > 0 && proxy.requests.filter((q) => blob.test(q.path)).length >= 2, 30_000, 'the resume request hanging');
    await publishDesired({ revision: 4, services: { web: app(img('one'), 4) }, update: { health_window: '0s' } });
    await until(reportedFor(3, 'superseded', since), 20_000, 'revision 3 superseded');
    expect(alive(child!.pid)).toBe(false);
    await until(reportedFor(4, 'applied', since), 60_000, 'revision 4 applied');
    expect(size(partialOf(bigLayer.get('two')!))).toBeGreaterThan(0);
    proxy.setFaults([]);
  }, 120_000);

  it('kill -9 of the agent mid-pull leaves no orphan child; the next agent resumes the partial blob and converges', async () => {
    const since = Date.now();
    const digest = bigLayer.get('three')!;
    const blob = new RegExp(`/blobs/${digest}`);
    proxy.setFaults([{ method: 'GET', path: blob, nth: 1, dropAfterBytes: 3_000_000 }, { method: 'GET', path: blob, nth: 2, delayMs: 60_000 }]);
    await publishDesired({ revision: 5, services: { web: app(img('three'), 5) }, update: { health_window: '0s' } });
    const [child] = await until(() => pullChildren(agent.proc.pid!).length > 0 && pullChildren(agent.proc.pid!), 30_000, 'a pull child');
    await until(() => size(partialOf(digest)) > 0 && proxy.requests.filter((q) => blob.test(q.path)).length >= 2, 30_000, 'the resume request hanging');
    await stopProcess(agent.proc, 'SIGKILL');
    // The child sees its IPC channel close and stops at once (not after its 60 s wait).
    await until(() => !alive(child!.pid), 5_000, 'the orphaned pull child gone');
    const kept = size(partialOf(digest));
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(3_000_000);
    // Only the content store's partial is left: no blob was published from it.
    expect(fs.existsSync(path.join(root, 'content', 'blobs', ...digest.split(':')))).toBe(false);
    proxy.setFaults([]);
    agent = startAgent();
    await until(reportedFor(5, 'applied', since), 90_000, 'revision 5 applied by the next agent');
    expect(proxy.requests.some((q) => blob.test(q.path) && q.headers.range === `bytes=${kept}-` && q.status === 206)).toBe(true);
    expect(size(partialOf(digest))).toBe(0);
    await sleep(100);
    expect(pullChildren(agent.proc.pid!)).toEqual([]);
    expect(trap.caught()).toBe('');
  }, 180_000);
});
