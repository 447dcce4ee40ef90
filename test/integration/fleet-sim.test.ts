import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopProcess, until } from '../helpers/agent-process.js';
import { runBerth, startBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { FleetSim } from '../helpers/fleet-sim.js';
import { testFleetKey } from '../helpers/signing.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';

// `berth fleet` against a real mosquitto and 50 simulated devices (test/helpers/fleet-sim.ts) that speak
// protocol v1 as the agent does. The end-to-end path with real agents is fleet-agents.test.ts.

const N = 50;
const fleetKey = testFleetKey();
let broker: MosquittoInstance;
let sim: FleetSim;
let dir: string;
let observer: MqttClient;
const retainedDesired = new Map<string, number>();

const fleet = (...args: string[]) => runBerth(['fleet', ...args, '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml')]);
const compose = (name: string, image: string): string => {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, `services:\n  web:\n    image: ${image}\n    command: ["sleep", "3600"]\nx-berth:\n  update:\n    health_window: 1s\n`);
  return file;
};

beforeAll(async () => {
  requireBuilt();
  // The queue limit of scripts/mosquitto/berth.conf: 50 devices' retained snapshot (150 messages) is more
  // than a client's QoS 1 allowance (20 in flight + 100 queued), which the fleet tool must live with.
  broker = await startMosquitto({ extraConfig: ['max_queued_messages 100'] });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-sim-'));
  // The fleet file names the signing key (relative to it), as an operator's would.
  fleetKey.writePrivate(dir);
  fs.writeFileSync(path.join(dir, 'fleet.yaml'), 'signingKey: fleet-key.key\ndevices:\n  sim-0: {groups: [canary], labels: {site: lab}}\n  sim-1: {groups: [canary]}\ngroups:\n  canary: [sim-2]\n');
  sim = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'sim', count: N, applyMs: 100 });
  observer = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'fleet-sim-observer' });
  observer.on('message', (topic, payload) => {
    const m = /^berth\/v1\/([^/]+)\/desired$/.exec(topic);
    if (m && payload.length > 0) retainedDesired.set(m[1]!, (JSON.parse(payload.toString()) as { revision: number }).revision);
  });
  await observer.subscribeAsync('berth/v1/+/desired', { qos: 1 });
}, 120_000);

afterAll(async () => {
  await observer?.endAsync();
  await sim?.stop();
  await broker?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('berth fleet with simulated devices', () => {
  it('status lists every device with its revision, services and groups', async () => {
    const r = await fleet('status', '--json');
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as Array<Record<string, any>>;
    expect(rows).toHaveLength(N);
    expect(rows.every((row) => row.online === true && row.revision === 0 && row.servicesTotal === 0)).toBe(true);
    expect(rows.find((row) => row.device === 'sim-2')!.groups).toEqual(['canary', 'profile:sim-board']);
    const canary = await fleet('status', '--group', 'canary');
    expect(canary.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['sim-0', 'sim-1', 'sim-2']);
  });

  it('dry run shows the plan and publishes nothing', async () => {
    const r = await fleet('deploy', compose('good', 'example.com/app:1'), '--group', 'canary', '--dry-run', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { device: 'sim-0', revision: 1, currentRevision: 0, online: true },
      { device: 'sim-1', revision: 1, currentRevision: 0, online: true },
      { device: 'sim-2', revision: 1, currentRevision: 0, online: true },
    ]);
    expect(retainedDesired.size).toBe(0);
  });

  it('refuses a deployment the agents would reject, before publishing anything', async () => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, 'services:\n  web:\n    image: example.com/app:1\n    mem_limit: 12q\n');
    const r = await fleet('deploy', file, '--all');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/mem_limit/);
    const missing = await fleet('deploy', path.join(dir, 'nope.yaml'), '--all');
    expect(missing.code).toBe(4);
    expect(retainedDesired.size).toBe(0);
  });

  it('deploys to all devices and every one applies revision 1', async () => {
    const r = await fleet('deploy', compose('good', 'example.com/app:1'), '--all', '--json');
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.counts).toMatchObject({ applied: N, failed: 0, 'rolled-back': 0, offline: 0, 'timed-out': 0, 'not-sent': 0 });
    expect(sim.devices.every((d) => d.revision === 1 && d.status === 'applied')).toBe(true);
    await until(() => retainedDesired.size === N, 10_000, 'retained desired for all');
  });

  it('stops sending when the abort threshold is crossed and exits non-zero', async () => {
    const r = await fleet('deploy', compose('bad', 'example.com/missing:1'), '--all', '--rate', '60/min', '--abort-after', '50', '--min-devices', '2', '--json');
    expect(r.code).toBe(10);
    const s = JSON.parse(r.stdout);
    expect(s.aborted).toMatch(/failed/);
    expect(s.counts['rolled-back']).toBeGreaterThanOrEqual(2);
    expect(s.counts['not-sent']).toBeGreaterThanOrEqual(N - 10);
    const notSent = (s.devices as Array<{ device: string; outcome: string }>).filter((d) => d.outcome === 'not-sent').map((d) => d.device);
    // Devices that were never sent keep revision 1; the rolled-back ones report revision 2 with the old services.
    for (const id of notSent) expect(sim.device(id)).toMatchObject({ revision: 1, status: 'applied' });
    const failed = sim.devices.filter((d) => d.revision === 2);
    expect(failed.length).toBe(N - notSent.length);
    expect(failed.every((d) => d.status === 'rolled-back')).toBe(true);
  });

  it('picks each device\'s next revision from the retained desired and reported ones', async () => {
    const r = await fleet('deploy', compose('good2', 'example.com/app:2'), '--all', '--json');
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as { devices: Array<{ device: string; revision: number; outcome: string }> };
    for (const d of s.devices) expect(d.revision).toBe(sim.device(d.device).received.at(-2) === 2 ? 3 : 2);
    expect(s.devices.every((d) => d.outcome === 'applied')).toBe(true);
  });

  it('reports an offline device as offline and leaves its desired state retained', async () => {
    await sim.cut('sim-49');
    for (let i = 0; ; i++) {
      const rows = JSON.parse((await fleet('status', '--json')).stdout) as Array<{ device: string; online: boolean }>;
      if (rows.find((x) => x.device === 'sim-49')?.online === false) break;
      if (i > 50) throw new Error('sim-49 never reported offline');
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = retainedDesired.get('sim-49')!;
    const r = await fleet('deploy', compose('good3', 'example.com/app:3'), '--device', 'sim-49', 'sim-48', '--timeout', '30s');
    expect(r.code).toBe(7);
    expect(r.stdout).toMatch(/sim-49\s+\d+\s+offline/);
    await until(() => retainedDesired.get('sim-49') === before + 1, 10_000, 'retained desired for the offline device');
  });

  it('answers commands and logs through the agent protocol', async () => {
    const ping = await fleet('cmd', 'sim-3', 'ping');
    expect(ping.code, ping.stderr).toBe(0);
    expect(JSON.parse(ping.stdout)).toMatchObject({ status: 'ok', data: { pong: true } });
    const logs = await fleet('logs', 'sim-3', 'web');
    expect(logs.stdout).toContain('sim-3 web log line');
    const bad = await fleet('cmd', 'sim-3', 'stop', 'nope');
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/404/);
  });

  it('several watchers share the live stream (MQTT 5 shared subscriptions)', async () => {
    const args = ['fleet', 'watch', '--broker', broker.url, '--share', 'ops', '--json', '--telemetry'];
    const a = startBerth(args);
    const b = startBerth(args);
    try {
      await until(() => a.lines.length >= N - 1 && b.lines.length >= N - 1, 15_000, 'both watchers printed the snapshot');
      const telemetry = (lines: string[]) => lines.filter((l) => l.startsWith('{') && JSON.parse(l).kind === 'telemetry');
      const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'fleet-sim-telemetry' });
      for (let i = 0; i < 40; i++) await publisher.publishAsync(`berth/v1/sim-${i}/telemetry`, JSON.stringify({ time: new Date().toISOString(), host: { cpu: { percent: i } } }), { qos: 1 });
      await publisher.endAsync();
      await until(() => telemetry(a.lines).length + telemetry(b.lines).length >= 40, 15_000, 'all telemetry delivered once');
      const seen = [...telemetry(a.lines), ...telemetry(b.lines)].map((l) => JSON.parse(l).device as string);
      expect(seen).toHaveLength(40);
      expect(new Set(seen).size).toBe(40);
      expect(telemetry(a.lines).length).toBeGreaterThan(0);
      expect(telemetry(b.lines).length).toBeGreaterThan(0);
    } finally {
      await Promise.all([stopProcess(a.proc), stopProcess(b.proc)]);
    }
  });
});
