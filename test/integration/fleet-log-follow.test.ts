import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, stopProcess, until, type AgentProcess } from '../helpers/agent-process.js';
import { berthSync, runBerth, startBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { createToken, startService, type ServiceProcess } from '../helpers/fleet-service.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { recordMessages, type InboxMessage } from '../helpers/mqtt-inbox.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { testFleetKey } from '../helpers/signing.js';

// A log follow outlives its agent (issue 21): a real agent whose service prints a numbered line every
// 200 ms is followed by two viewers at once, the fleet service's stream (the dashboard's) and
// `berth fleet logs -f`; the agent is killed -9, then stopped cleanly, and restarted each time. Both
// viewers must go on by themselves with every line once: none repeated, none lost (src/fleet/log-follow.ts).
// Ctrl-C and leaving the stream end the follow on the device (logs-stop). Real mosquitto, registry and
// runtime; loopback only.

const DEVICE = 'follow-dev';
const base = `berth/v1/${DEVICE}`;
const fleetKey = testFleetKey();
let broker: MosquittoInstance;
let registry: RegistryInstance;
let root: string;
let dir: string;
let fleet: MqttClient;
let agent: AgentProcess;
let service: ServiceProcess;
let token: string;
const inbox: InboxMessage[] = [];

const startAgent = (): AgentProcess => spawnAgent(root, ['--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '5s', '--no-governor', '--backoff-base', '200ms'], fleetKey);
const onlineSince = (since: number) => () => inbox.find((m) => m.topic === `${base}/status` && m.at >= since && m.payload?.online === true);

beforeAll(async () => {
  requireBuilt();
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'follow/app', 'v1', { arches: ['amd64'] });
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-log-follow-'));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-log-follow-fleet-'));
  fleetKey.writePrivate(dir);
  fs.writeFileSync(path.join(dir, 'fleet.yaml'), `signingKey: fleet-key.key\ndevices:\n  ${DEVICE}: {}\n`);
  fleet = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'follow-test' });
  recordMessages(fleet, inbox);
  await fleet.subscribeAsync([`${base}/status`, `${base}/reported`, `${base}/cmd/+/result`], { qos: 1 });
  const since = Date.now();
  agent = startAgent();
  await until(onlineSince(since), 30_000, 'agent online');
  const ticker = ['sh', '-c', 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done'];
  await fleet.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, { revision: 1, services: { web: { image: `${registry.host}/follow/app:v1`, command: ticker, stop_grace_period: '1s' } }, update: { health_window: '1s' } }), { qos: 1, retain: true });
  await until(() => inbox.find((m) => m.topic === `${base}/reported` && m.payload?.revision === 1 && m.payload?.status === 'applied'), 60_000, 'the ticker applied');
  const data = path.join(dir, 'data');
  service = await startService(['--data', data, '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml')]);
  token = await createToken('deploy', data);
}, 120_000);

afterAll(async () => {
  await service?.stop();
  if (agent) await stopProcess(agent.proc);
  const left = JSON.parse(berthSync(['--root', root, 'ps', '-a', '--json']).stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berthSync(['--root', root, 'rm', '-f', ...left.map((c) => c.name)]);
  await fleet?.endAsync();
  await Promise.all([broker?.stop(), registry?.stop()]);
  for (const d of [root, dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** The service's follow stream (what the dashboard reads), its events parsed as they come. */
function openStream(): { events: Array<{ event: string; data: any }>; close: () => void } {
  const events: Array<{ event: string; data: any }> = [];
  const abort = new AbortController();
  void (async () => {
    const res = await fetch(`${service.url}/api/v1/devices/${DEVICE}/logs/follow`, {
      method: 'POST', signal: abort.signal,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ service: 'web', tail: 200 }),
    });
    const reader = res.body!.getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += Buffer.from(value).toString('utf8');
      let at: number;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        const chunk = buf.slice(0, at);
        buf = buf.slice(at + 2);
        const event = /^event: (.*)$/m.exec(chunk)?.[1];
        const data = /^data: (.*)$/m.exec(chunk)?.[1];
        if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
      }
    }
  })().catch(() => undefined);
  return { events, close: () => abort.abort() };
}

/** The tick numbers of the lines a viewer printed, in order. */
const ticks = (lines: readonly string[]): number[] => lines.map((l) => /^tick (\d+)$/.exec(l)?.[1]).filter((n) => n !== undefined).map(Number);
const streamLines = (events: ReadonlyArray<{ event: string; data: any }>): string[] => events.filter((e) => e.event === 'lines').flatMap((e) => e.data.lines.map((l: { text: string }) => l.text));
/** Every number once, in order, with no gap. */
const expectContiguous = (ns: readonly number[], who: string): void => {
  expect(ns.length, who).toBeGreaterThan(0);
  expect(ns, who).toEqual(ns.map((_, i) => ns[0]! + i));
};
const stopResults = (since: number) => inbox.filter((m) => m.topic.endsWith('/result') && m.at >= since && m.payload?.data?.stopped !== undefined);

describe('a log follow through the fleet', () => {
  it('goes on by itself after the agent is killed -9 and after a clean restart, every line once, in the stream and in berth fleet logs -f', async () => {
    const stream = openStream();
    const cli = startBerth(['fleet', 'logs', DEVICE, 'web', '-f', '--tail', '200', '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml')]);
    try {
      const reached = async (n: number, what: string): Promise<void> => {
        await until(() => ticks(streamLines(stream.events)).some((t) => t >= n), 60_000, `the stream ${what}`);
        await until(() => ticks(cli.lines).some((t) => t >= n), 60_000, `berth fleet logs -f ${what}`);
      };
      const latest = (): number => Math.max(...ticks(streamLines(stream.events)));
      await until(() => ticks(cli.lines).length > 5 && ticks(streamLines(stream.events)).length > 5, 30_000, 'both viewers streaming');
      expect(stream.events.find((e) => e.event === 'mode')?.data).toEqual({ mode: 'follow' });

      for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
        const before = latest();
        const since = Date.now();
        await stopProcess(agent.proc, signal);
        // The ticker goes on without the agent (the runtime keeps containers): these lines must not be lost.
        await new Promise((r) => setTimeout(r, 1500));
        agent = startAgent();
        await until(onlineSince(since), 30_000, `the agent online after ${signal}`);
        // Well past what either viewer had, and past the lines written while the agent was away.
        await reached(before + 40, `after ${signal}`);
      }
      expectContiguous(ticks(streamLines(stream.events)), 'the stream');
      expectContiguous(ticks(cli.lines), 'berth fleet logs -f');
      // The stream said it was waiting for the device, then following again; it never ended.
      const modes = stream.events.filter((e) => e.event === 'mode').map((e) => e.data.mode);
      expect(modes).toEqual(['follow', 'waiting', 'follow', 'waiting', 'follow']);
      expect(stream.events.some((e) => e.event === 'end')).toBe(false);
    } finally {
      const since = Date.now();
      // Ctrl-C: the CLI ends its follow on the device before exiting; so does the stream when its viewer leaves.
      const exited = new Promise<number | null>((r) => cli.proc.once('exit', (code) => r(code)));
      cli.proc.kill('SIGINT');
      expect(await exited).toBe(0);
      stream.close();
      const stopped = await until(() => { const s = stopResults(since); return s.length >= 2 ? s : undefined; }, 20_000, 'logs-stop of both follows');
      expect(stopped.map((m) => m.payload.status)).toEqual(['ok', 'ok']);
    }
  }, 240_000);

  it('berth fleet cmd DEVICE logs SERVICE --follow is the same follow, ended by Ctrl-C', async () => {
    const cli = startBerth(['fleet', 'cmd', DEVICE, 'logs', 'web', '--follow', '--tail', '3', '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml')]);
    await until(() => ticks(cli.lines).length > 8, 30_000, 'berth fleet cmd logs --follow streaming');
    expectContiguous(ticks(cli.lines), 'berth fleet cmd logs --follow');
    const since = Date.now();
    const exited = new Promise<number | null>((r) => cli.proc.once('exit', (code) => r(code)));
    cli.proc.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stopResults(since).map((m) => m.payload.status)).toEqual(['ok']);
    // A service the device does not run: the device's 404, named, as the exit code of not found.
    const nope = await runBerth(['fleet', 'logs', DEVICE, 'nope', '-f', '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml')]);
    expect(nope.code, nope.stderr).toBe(4);
    expect(nope.stderr).toMatch(/logs of nope on follow-dev: error \(404\) .*nope/);
    // --follow is for logs only.
    const wrong = berthSync(['fleet', 'cmd', DEVICE, 'ping', '--follow', '--broker', broker.url, '--fleet-file', path.join(dir, 'fleet.yaml')]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--follow goes with logs SERVICE only');
  }, 60_000);
});
