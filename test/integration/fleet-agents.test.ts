import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, stopProcess, until, type AgentProcess } from '../helpers/agent-process.js';
import { testFleetKey } from '../helpers/signing.js';
import { runBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

// `berth fleet` end to end: a real mosquitto, a real registry and three real `berth agent` processes on
// this machine, each with its own --root and device id (container ids are random per engine, so the
// three never collide in the shared runtime).

const DEVICES = ['dev-a', 'dev-b', 'dev-c'] as const;
let broker: MosquittoInstance;
let registry: RegistryInstance;
let dir: string;
let img: string;
const roots = new Map<string, string>();
const fleetKey = testFleetKey();
let keyFile: string;
const agents = new Map<string, AgentProcess>();

function startAgent(id: string): AgentProcess {
  const a = spawnAgent(roots.get(id)!, ['--broker', broker.url, '--device-id', id, '--telemetry-interval', '1s', '--no-governor', '--backoff-base', '200ms'], fleetKey);
  agents.set(id, a);
  return a;
}

const fleet = (...args: string[]) => runBerth(['fleet', ...args, '--broker', broker.url, '--signing-key', keyFile]);
const compose = (name: string, image: string, command = ['sleep', '3600']): string => {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, `services:\n  web:\n    image: ${image}\n    command: ${JSON.stringify(command)}\n    stop_grace_period: 1s\nx-berth:\n  update:\n    health_window: 1s\n`);
  return file;
};
const statusRows = async () => JSON.parse((await fleet('status', '--json')).stdout) as Array<Record<string, any>>;
const running = async (id: string) => (JSON.parse((await runBerth(['--root', roots.get(id)!, 'ps', '--json'])).stdout || '[]') as Array<{ name: string; state: string }>).filter((c) => c.state === 'running');

/** Polls an async condition (each try is a berth process, so no tight loop). */
async function eventually<T>(fn: () => Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await sleep(300);
  }
}

beforeAll(async () => {
  requireBuilt();
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'fleet/app', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/fleet/app:v1`;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-agents-'));
  keyFile = fleetKey.writePrivate(dir);
  for (const id of DEVICES) {
    roots.set(id, fs.mkdtempSync(path.join(os.tmpdir(), `berth-fleet-${id}-`)));
    startAgent(id);
  }
  await eventually(async () => (await statusRows()).filter((r) => r.online).length === DEVICES.length, 60_000, 'three agents online');
}, 120_000);

afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => stopProcess(a.proc)));
  for (const root of roots.values()) {
    const left = JSON.parse((await runBerth(['--root', root, 'ps', '-a', '--json'])).stdout || '[]') as Array<{ name: string }>;
    if (left.length > 0) await runBerth(['--root', root, 'rm', '-f', ...left.map((c) => c.name)]);
    fs.rmSync(root, { recursive: true, force: true });
  }
  await Promise.all([broker?.stop(), registry?.stop()]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('berth fleet with three real agents', () => {
  it('deploys to all three: each applies revision 1 and runs the service', async () => {
    const r = await fleet('deploy', compose('v1', img), '--all');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/APPLIED\s+FAILED\s+ROLLED-BACK\s+REJECTED\s+SUPERSEDED\s+OFFLINE\s+TIMED-OUT\s+NOT-SENT\n3\s+0\s+0\s+0\s+0\s+0\s+0\s+0/);
    for (const id of DEVICES) expect((await running(id)).map((c) => c.name.split('.')[0])).toEqual(['web']);
    const rows = await statusRows();
    expect(rows.map((x) => [x.device, x.revision, x.status, x.servicesUp, x.servicesTotal])).toEqual(DEVICES.map((id) => [id, 1, 'applied', 1, 1]));
  });

  it('rolls back one device whose deploy fails, and leaves the others alone', async () => {
    const r = await fleet('deploy', compose('broken', `${registry.host}/fleet/missing:nope`), '--device', 'dev-b', '--json');
    expect(r.code).toBe(9);
    const s = JSON.parse(r.stdout);
    expect(s.devices).toEqual([expect.objectContaining({ device: 'dev-b', revision: 2, currentRevision: 1, outcome: 'rolled-back', error: expect.stringMatching(/missing|not found|unknown/i) })]);
    expect((await running('dev-b')).map((c) => c.name.split('.')[0])).toEqual(['web']);
    const rows = await statusRows();
    expect(rows.map((x) => [x.device, x.revision, x.status])).toEqual([['dev-a', 1, 'applied'], ['dev-b', 2, 'rolled-back'], ['dev-c', 1, 'applied']]);
  });

  it('aborts a rollout after the first failure and never sends to the rest', async () => {
    const r = await fleet('deploy', compose('broken2', `${registry.host}/fleet/missing:again`), '--all', '--rate', '6/min', '--abort-after', '50', '--min-devices', '1', '--json');
    expect(r.code).toBe(10);
    const s = JSON.parse(r.stdout);
    expect(s.aborted).toMatch(/1 of 1 finished devices failed/);
    expect(s.devices.map((d: any) => [d.device, d.revision, d.outcome])).toEqual([['dev-a', 2, 'rolled-back'], ['dev-b', 3, 'not-sent'], ['dev-c', 2, 'not-sent']]);
    const rows = await statusRows();
    expect(rows.map((x) => [x.device, x.revision, x.desiredRevision])).toEqual([['dev-a', 2, 2], ['dev-b', 2, 2], ['dev-c', 1, 1]]);
    for (const id of DEVICES) expect(await running(id)).toHaveLength(1);
  });

  it('a deploy to an offline device lands when it comes back', async () => {
    await stopProcess(agents.get('dev-c')!.proc);
    await eventually(async () => (await statusRows()).find((x) => x.device === 'dev-c')?.online === false, 15_000, 'dev-c offline');
    const r = await fleet('deploy', compose('v2', img, ['sleep', '3601']), '--device', 'dev-c', '--timeout', '30s', '--json');
    expect(r.code).toBe(7);
    expect(JSON.parse(r.stdout).devices).toEqual([expect.objectContaining({ device: 'dev-c', revision: 2, outcome: 'offline' })]);
    expect((await statusRows()).find((x) => x.device === 'dev-c')).toMatchObject({ online: false, revision: 1, desiredRevision: 2 });
    startAgent('dev-c');
    const row = await eventually(async () => (await statusRows()).find((x) => x.device === 'dev-c' && x.revision === 2 && x.status === 'applied'), 60_000, 'dev-c applied revision 2');
    expect(row).toMatchObject({ online: true, servicesUp: 1, servicesTotal: 1 });
  });

  it('sends commands and reads logs on one device', async () => {
    const ping = await fleet('cmd', 'dev-a', 'ping');
    expect(ping.code, ping.stderr).toBe(0);
    expect(JSON.parse(ping.stdout)).toMatchObject({ status: 'ok', result: 200, data: { pong: true } });
    const restart = await fleet('cmd', 'dev-b', 'restart', 'web');
    expect(JSON.parse(restart.stdout)).toMatchObject({ status: 'ok', data: { state: 'running' } });
    const logs = await fleet('logs', 'dev-a', 'nope');
    expect(logs.code).toBe(4);
    expect(logs.stderr).toMatch(/no service "nope"/);
  });

  it('status shows live telemetry when asked to listen', async () => {
    const r = await fleet('status', '--listen', '2500ms');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^DEVICE\s+ONLINE\s+REVISION\s+STATUS\s+SERVICES\s+AGENT\s+CPU\s+MEMORY\s+TEMP\s+LAST SEEN\s+GROUPS$/);
    expect(lines).toHaveLength(4);
    for (const l of lines.slice(1)) expect(l).toMatch(/^dev-[abc]\s+yes\s+\d+\s+\S+\s+1\/1\s+\S+\s+[\d.]+%\s+[\d.]+%/);
  });
});
