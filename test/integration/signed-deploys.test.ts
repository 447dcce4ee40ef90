import crypto from 'node:crypto';
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

// Issue 18, signed deploys end to end: a real mosquitto, a real registry, a real agent that trusts one
// fleet key and has a deploy policy, and `berth fleet` signing as an operator runs it. Every refusal
// must name its reason where the fleet sees it (an event, a command result, reported), leave what runs
// alone, and the agent must take the next valid message.

const DEVICE = 'dev-signed';
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

/** The deploy policy this device was flashed with: one device and one bind prefix allowed, nothing else. */
const POLICY = { devices: ['/dev/null'], bindPaths: ['/srv/berth-signed-test'] };
const startAgent = (): AgentProcess => spawnAgent(root, ['--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '60s', '--no-governor'], fleetKey, { deployPolicy: POLICY });

const fleet = (args: string[], key = keyFile) => runBerth(['fleet', ...args, '--broker', broker.url, '--signing-key', key]);
const messages = (suffix: string, since: number) => inbox.filter((m) => m.topic === `${base}/${suffix}` && m.at >= since);
const rejected = (since: number, pattern: RegExp) => () => messages('events', since).find((m) => m.payload.kind === 'desired-rejected' && pattern.test(m.payload.error?.message ?? ''))?.payload;
const lastReported = () => inbox.filter((m) => m.topic === `${base}/reported`).at(-1)?.payload;
const compose = (name: string, extra = ''): string => {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, `services:\n  web:\n    image: ${img}\n    command: ["sleep", "3600"]\n    stop_grace_period: 1s\n${extra}x-berth:\n  update:\n    health_window: 0s\n`);
  return file;
};
/** Deploys a compose file to the device with `berth fleet deploy --json`; returns the device's outcome row. */
async function deploy(file: string, key = keyFile, timeout = '90s'): Promise<{ code: number; device: Record<string, any> }> {
  const r = await fleet(['deploy', file, '--device', DEVICE, '--json', '--timeout', timeout], key);
  const summary = JSON.parse(r.stdout || '{}') as { devices?: Array<Record<string, any>> };
  if (!summary.devices) throw new Error(`berth fleet deploy: ${r.code} ${r.stderr}`);
  return { code: r.code ?? -1, device: summary.devices[0]! };
}

beforeAll(async () => {
  requireBuilt();
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'signed/app', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/signed/app:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-signed-root-'));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-signed-'));
  keyFile = fleetKey.writePrivate(dir);
  observer = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'signed-observer' });
  recordMessages(observer, inbox);
  await observer.subscribeAsync(`${base}/#`, { qos: 1 });
  agent = startAgent();
  await until(() => messages('status', 0).find((m) => m.payload.online === true), 30_000, 'agent online');
}, 120_000);

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

describe('signed deploys (issue 18)', () => {
  it('says at start which key it trusts', () => {
    expect(agent.lines.find((l) => l.event === 'fleet-key')).toMatchObject({ key: fleetKey.key.publicKey.id, rotated: false });
  });

  it('applies what berth fleet deploy signed; refuses an unsigned desired state without touching reported', async () => {
    const first = await deploy(compose('v1'));
    expect(first.device).toMatchObject({ revision: 1, outcome: 'applied' });
    const since = Date.now();
    await observer.publishAsync(`${base}/desired`, JSON.stringify({ revision: 50, services: { evil: { image: img } } }), { qos: 1, retain: true });
    expect(await until(rejected(since, /^unsigned desired state/), 15_000, 'unsigned refused')).toMatchObject({ error: { code: 'auth', result: 401 } });
    expect(lastReported()).toMatchObject({ revision: 1, status: 'applied' });
  });

  it('refuses a tampered signature and a message signed for another device, then takes the next valid one', async () => {
    const since = Date.now();
    const good = JSON.parse(fleetKey.desired(DEVICE, { revision: 60, services: { web: { image: img, command: ['sleep', '3601'] } } })) as Record<string, string>;
    const tampered = { ...good, body: good.body!.replace('sleep', 'reboot') };
    await observer.publishAsync(`${base}/desired`, JSON.stringify(tampered), { qos: 1, retain: true });
    expect(await until(rejected(since, /does not verify/), 15_000, 'tampered refused')).toMatchObject({ revision: 60, error: { code: 'auth' } });
    await observer.publishAsync(`${base}/desired`, fleetKey.desired('dev-other', { revision: 61, services: { web: { image: img } } }), { qos: 1, retain: true });
    expect(await until(rejected(since, /signed for device dev-other, not for this one \(dev-signed\)/), 15_000, 'wrong device refused')).toBeDefined();
    // Neither moved reported nor what a deploy must be newer than: the next deploy applies (the fleet
    // counts on from the retained desired state, 61, which the device refused).
    expect(lastReported()).toMatchObject({ revision: 1, status: 'applied' });
    const next = await deploy(compose('v2', '    environment: { V: "2" }\n'));
    expect(next.device).toMatchObject({ revision: 62, outcome: 'applied' });
  }, 120_000);

  it('refuses a replayed desired state (an older revision, properly signed) and a replayed command', async () => {
    const since = Date.now();
    const service = (n: number) => ({ web: { image: img, command: ['sleep', String(3600 + n)], stop_grace_period: '1s' } });
    const now = lastReported().revision as number;
    const top = now + 10;
    await observer.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, { revision: top, services: service(10), update: { health_window: '0s' } }), { qos: 1, retain: true });
    await until(() => messages('reported', since).find((m) => m.payload.revision === top && m.payload.status === 'applied'), 60_000, `revision ${top} applied`);
    // An older revision the device never ran, signed by the fleet once (captured off the wire, say): a replay.
    await observer.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, { revision: now + 5, services: service(5) }), { qos: 1 });
    const replayed = new RegExp(`^revision ${now + 5} is not newer than revision ${top}: a replayed or stale desired state$`);
    expect(await until(rejected(since, replayed), 15_000, 'replay refused')).toMatchObject({ revision: now + 5, error: { code: 'auth' } });
    // The same message as one the device already ran (a retained re-delivery looks like this): passed over quietly.
    await observer.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, { revision: now, services: service(2) }), { qos: 1 });
    await until(() => agent.lines.find((l) => l.event === 'desired-ignored' && l.revision === now && Date.parse(l.time) >= since), 15_000, 'known revision ignored');
    expect(lastReported()).toMatchObject({ revision: top, status: 'applied' });

    // A command runs once: the same signed message again is refused as a replay, answered on its result topic.
    const cmd = fleetKey.command(DEVICE, 'f-replay1', { action: 'ping' });
    await observer.publishAsync(`${base}/cmd/f-replay1`, cmd, { qos: 1 });
    await until(() => messages('cmd/f-replay1/result', since).length >= 1, 15_000, 'first answer');
    await observer.publishAsync(`${base}/cmd/f-replay1`, cmd, { qos: 1 });
    await until(() => messages('cmd/f-replay1/result', since).length >= 2, 15_000, 'second answer');
    const [firstAnswer, second] = messages('cmd/f-replay1/result', since).map((m) => m.payload);
    expect(firstAnswer).toMatchObject({ status: 'ok', data: { pong: true } });
    expect(second).toMatchObject({ status: 'rejected', result: 401, reason: 'command f-replay1 was already run: a replay' });
    // Commands signed for another id, or unsigned, are refused the same way.
    await observer.publishAsync(`${base}/cmd/f-other`, cmd, { qos: 1 });
    await observer.publishAsync(`${base}/cmd/f-plain`, JSON.stringify({ action: 'prune' }), { qos: 1 });
    expect((await until(() => messages('cmd/f-other/result', since)[0], 15_000, 'other id')).payload).toMatchObject({ status: 'rejected', reason: 'signed as command f-replay1, received as f-other' });
    expect((await until(() => messages('cmd/f-plain/result', since)[0], 15_000, 'plain')).payload).toMatchObject({ status: 'rejected', result: 401, reason: expect.stringMatching(/^unsigned command/) });
    // And berth fleet cmd's own signed ping still works.
    const ping = await fleet(['cmd', DEVICE, 'ping']);
    expect(ping.code, ping.stderr).toBe(0);
  }, 120_000);

  it('rejects a deploy outside the device deploy policy, naming the rule and the service; allows what the policy names', async () => {
    const bind = await deploy(compose('root-bind', '    volumes: ["/:/host"]\n'));
    expect(bind.code).not.toBe(0);
    expect(bind.device).toMatchObject({ outcome: 'rejected', error: expect.stringMatching(/^service web: a bind mount of the host path \/, which this device's deploy policy does not allow \(deployPolicy.bindPaths\)$/) });
    const hostNet = await deploy(compose('host-net', '    network_mode: host\n'));
    expect(hostNet.device).toMatchObject({ outcome: 'rejected', error: expect.stringMatching(/service web: network_mode: host.*\(deployPolicy.hostNetwork\)/) });
    const device = await deploy(compose('tty', '    devices: ["/dev/ttyS0"]\n'));
    expect(device.device).toMatchObject({ outcome: 'rejected', error: expect.stringMatching(/service web: the host device \/dev\/ttyS0.*\(deployPolicy.devices\)/) });
    expect(lastReported()).toMatchObject({ status: 'rejected', error: { code: 'auth', result: 401 } });
    // Nothing was stopped: the last good revision still runs, and an allowed deploy applies.
    const allowed = await deploy(compose('allowed', '    devices: ["/dev/null"]\n'));
    expect(allowed.device).toMatchObject({ outcome: 'applied' });
  }, 240_000);

  it("applies a relative bind (the app's data directory) by default; the container is held to that directory at every start", async () => {
    const applied = await deploy(compose('data-bind', '    volumes: ["./data:/data"]\n'));
    expect(applied.device).toMatchObject({ outcome: 'applied' });
    const [c] = JSON.parse(berthSync(['--root', root, 'ps', '--json']).stdout) as Array<{ name: string }>;
    const binds = (JSON.parse(berthSync(['--root', root, 'inspect', c!.name]).stdout) as Array<{ HostConfig: { Binds: Array<{ source: string; target: string }> } }>)[0]!.HostConfig.Binds;
    const source = binds.find((b) => b.target === '/data')!.source;
    expect(source).toMatch(new RegExp(`^${root}/apps/[^/]+/data$`));
    expect(berthSync(['--root', root, 'exec', c!.name, 'sh', '-c', 'echo from-container > /data/f']).code).toBe(0);
    expect(fs.readFileSync(path.join(source, 'f'), 'utf8')).toBe('from-container\n');
    // What a container with the data directory mounted could do: swap a bind source for a link out of it.
    const outside = fs.mkdtempSync(path.join(dir, 'outside-'));
    fs.writeFileSync(path.join(outside, 'f'), 'host secret\n');
    fs.renameSync(source, `${source}.moved`);
    fs.symlinkSync(outside, source);
    const restart = berthSync(['--root', root, 'restart', c!.name]);
    expect(restart.code).not.toBe(0);
    expect(restart.stderr).toMatch(new RegExp(`bind mount ${source}:/data leads to ${fs.realpathSync(outside)}, outside the host directories`));
    expect(JSON.parse(berthSync(['--root', root, 'ps', '-a', '--json']).stdout)).toContainEqual(expect.objectContaining({ name: c!.name, state: expect.not.stringMatching(/running/) }));
    fs.rmSync(source);
    fs.renameSync(`${source}.moved`, source);
    expect(berthSync(['--root', root, 'restart', c!.name]).code).toBe(0);
    expect(berthSync(['--root', root, 'exec', c!.name, 'cat', '/data/f']).stdout).toBe('from-container\n');
  }, 180_000);

  it('rotates the fleet key: announced under the old key, the new one is trusted from then on, also after a restart', async () => {
    const next = testFleetKey();
    const nextKey = next.writePrivate(fs.mkdtempSync(path.join(dir, 'next-')));
    const pub = path.join(dir, 'next.pub');
    fs.writeFileSync(pub, crypto.createPublicKey(next.privatePem).export({ format: 'pem', type: 'spki' }));
    // Announced with the new key's own signature only: refused (only the trusted key may announce a successor).
    const selfSigned = await fleet(['cmd', DEVICE, 'rotate-key', '--new-key', pub], nextKey);
    expect(selfSigned.code).toBe(11);
    expect(selfSigned.stderr).toMatch(/rejected \(401\): signed with key [0-9a-f]{16}; this device trusts key/);
    const r = await fleet(['cmd', DEVICE, 'rotate-key', '--new-key', pub]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'ok', data: { key: next.key.publicKey.id, previous: fleetKey.key.publicKey.id } });
    // The retired key's deploy is refused on the device: a desired-rejected event (no reported: nobody
    // vouches for it), which berth fleet deploy shows as the device's outcome.
    const since0 = Date.now();
    const old = await deploy(compose('old-key', '    environment: { K: "old" }\n'), keyFile, '30s');
    expect(old.device).toMatchObject({ outcome: 'rejected', error: expect.stringMatching(/^signed with key [0-9a-f]{16}; this device trusts key [0-9a-f]{16}$/) });
    expect(await until(rejected(since0, /this device trusts key/), 15_000, 'retired key refused')).toMatchObject({ error: { code: 'auth' } });
    const fresh = await deploy(compose('new-key', '    environment: { K: "new" }\n'), nextKey);
    expect(fresh.device).toMatchObject({ outcome: 'applied' });
    await stopProcess(agent.proc);
    const since = Date.now();
    agent = startAgent();
    await until(() => messages('status', since).find((m) => m.payload.online === true), 30_000, 'agent online again');
    expect(agent.lines.find((l) => l.event === 'fleet-key')).toMatchObject({ key: next.key.publicKey.id, rotated: true });
    // The retained desired state (signed with the new key, already applied) is passed over on reconnect.
    expect((await fleet(['cmd', DEVICE, 'ping'], nextKey)).code).toBe(0);
    expect((await fleet(['cmd', DEVICE, 'ping'])).code).toBe(11);
  }, 240_000);
});

describe('unsigned development mode and the transport rule', () => {
  it('allowUnsigned: true is never the default and the agent warns at start', async () => {
    const devRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-signed-dev-'));
    try {
      const dev = spawnAgent(devRoot, ['--broker', broker.url, '--device-id', 'dev-unsigned', '--no-governor'], fleetKey, { allowUnsigned: true });
      const warning = await until(() => dev.lines.find((l) => l.event === 'unsigned-deploys-allowed'), 30_000, 'warning');
      expect(warning.warning).toMatch(/never use it outside development/);
      await stopProcess(dev.proc);
    } finally {
      fs.rmSync(devRoot, { recursive: true, force: true });
    }
  });

  it('plain mqtt:// with a password to another machine is refused before connecting (--insecure lifts it: unit-tested)', async () => {
    const pw = path.join(dir, 'pw');
    fs.writeFileSync(pw, 'secret\n');
    // The check comes before any connection or name lookup: nothing is sent anywhere (.invalid, RFC 2606, besides).
    const agentRun = await runBerth(['--root', root, 'agent', '--broker', 'mqtt://broker.invalid:1883', '--device-id', 'x', '--password-file', pw]);
    expect(agentRun.code).toBe(2);
    expect(agentRun.stderr).toMatch(/--broker mqtt:\/\/broker.invalid:1883 is plain MQTT/);
    const fleetRun = await runBerth(['fleet', 'status', '--broker', 'mqtt://broker.invalid:1883', '--password-file', pw]);
    expect(fleetRun.code).toBe(2);
    expect(fleetRun.stderr).toMatch(/plain MQTT.*\n.*--insecure/s);
  }, 60_000);
});
