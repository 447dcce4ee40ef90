import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, stopProcess, until, type AgentProcess } from '../helpers/agent-process.js';
import { testFleetKey } from '../helpers/signing.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { berthSync } from '../helpers/berth-cli.js';

// A board on a flaky uplink: the agent reaches the broker through a TCP relay the test can cut and
// restore on the same port. While cut, telemetry and events go to the SQLite spool; on reconnect they
// are replayed in order, marked replayed. Then a reboot without any broker runs the last good deployment.

const DEVICE = 'dev-offline';
const base = `berth/v1/${DEVICE}`;
let broker: MosquittoInstance;
let registry: RegistryInstance;
let root: string;
let img: string;
let fleet: MqttClient;
let relay: Relay;
const inbox: Array<{ topic: string; payload: any; at: number }> = [];

/** A TCP relay to the broker that can drop every connection and refuse new ones, then come back on the same port. */
class Relay {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async up(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);

const fleetKey = testFleetKey();
const startAgent = (extra: string[]): AgentProcess => spawnAgent(root, ['--no-governor', '--telemetry-interval', '1s', ...extra], fleetKey);

const got = (suffix: string, since = 0) => inbox.filter((m) => m.topic === `${base}/${suffix}` && m.at >= since);

beforeAll(async () => {
  requireBuilt();
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'offline/app', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/offline/app:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-offline-'));
  relay = new Relay({ host: broker.host, port: broker.port });
  await relay.up();
  fleet = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'fleet-offline' });
  fleet.on('message', (topic, payload) => inbox.push({ topic, payload: JSON.parse(payload.toString()), at: Date.now() }));
  await fleet.subscribeAsync(`${base}/#`, { qos: 1 });
}, 120_000);

afterAll(async () => {
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await relay?.down();
  await fleet?.endAsync();
  await Promise.all([broker?.stop(), registry?.stop()]);
  fs.rmSync(root, { recursive: true, force: true });
});

describe('agent offline operation', () => {
  it('spools telemetry and events while the broker is unreachable and replays them in order', async () => {
    const agent = startAgent(['--broker', `mqtt://127.0.0.1:${relay.port}`, '--device-id', DEVICE]);
    try {
      await fleet.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, { revision: 1, services: { app: { image: img, command: ['sleep', '3600'], stop_grace_period: '1s' } }, update: { health_window: '500ms' } }), { qos: 1, retain: true });
      await until(() => got('reported').find((m) => m.payload.revision === 1 && m.payload.status === 'applied'), 60_000, 'applied');
      await until(() => got('telemetry').find((m) => m.payload.replayed === undefined), 10_000, 'live telemetry');

      const cutAt = Date.now();
      await relay.down();
      await until(() => agent.lines.find((l) => l.event === 'broker-disconnected'), 10_000, 'agent notices');
      // An event while offline: a container the supervisor sees exit.
      expect(berth('run', '-d', '--name', 'blip', img, 'sh', '-c', 'exit 7').code).toBe(0);
      await sleep(5000);
      const backAt = Date.now();
      await relay.up();

      const replayed = await until(() => {
        const r = got('telemetry', backAt).filter((m) => m.payload.replayed === true);
        return r.length >= 4 ? r : undefined;
      }, 60_000, 'replayed telemetry');
      const times = replayed.map((m) => Date.parse(m.payload.time));
      expect([...times].sort((a, b) => a - b)).toEqual(times);
      expect(times[0]!).toBeGreaterThanOrEqual(cutAt - 1500);
      expect(times.at(-1)!).toBeLessThanOrEqual(backAt + 60_000);
      // Nothing lost: one sample per second across the cut, between the last live one and the replay.
      const lastLive = Math.max(...got('telemetry').filter((m) => m.at < backAt && m.payload.replayed === undefined).map((m) => Date.parse(m.payload.time)));
      expect(times[0]! - lastLive).toBeLessThan(2500);
      const ev = await until(() => got('events', backAt).find((m) => m.payload.kind === 'exited' && m.payload.container === 'blip'), 30_000, 'replayed exit event');
      expect(ev.payload).toMatchObject({ replayed: true, exitCode: 7 });
      expect(got('status', backAt).some((m) => m.payload.online === true)).toBe(true);
    } finally {
      await stopProcess(agent.proc);
    }
  });

  it('after a reboot with no broker, runs its last good deployment', async () => {
    // A reboot takes every container down: kill them behind the agent's back.
    const ps = JSON.parse(berth('ps', '--json').stdout) as Array<{ name: string }>;
    const app = ps.find((c) => c.name.startsWith('app.'))!;
    expect(berth('kill', app.name).code).toBe(0);
    await until(() => (JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string; state: string }>).find((c) => c.name === app.name && c.state !== 'running'), 15_000, 'app down');
    const agent = startAgent([]);
    try {
      await until(() => agent.lines.find((l) => l.event === 'deploy' && l.revision === 1 && l.status === 'applied'), 60_000, 'last good re-applied');
      const now = JSON.parse(berth('ps', '--json').stdout) as Array<{ name: string; state: string }>;
      expect(now.find((c) => c.name === app.name)?.state).toBe('running');
      expect(agent.lines.find((l) => l.event === 'agent-started')?.mode).toBe('local-only');
    } finally {
      await stopProcess(agent.proc);
    }
  });
});
