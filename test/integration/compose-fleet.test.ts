import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnAgent, stopProcess, until, type AgentProcess } from '../helpers/agent-process.js';
import { berthSync, runBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { recordMessages, type InboxMessage } from '../helpers/mqtt-inbox.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { testFleetKey } from '../helpers/signing.js';

// A compose file through the real fleet path (issue 17): `berth fleet deploy` reads and signs it, a real
// mosquitto carries it, a real agent runs it. What the file says must reach the container exactly as
// `berth deploy` would give it: `$$` a literal `$` once (not twice, not never), and a config's content
// (which travels inline) current after the file beside the compose file was edited and redeployed.

const DEVICE = 'dev-compose';
const fleetKey = testFleetKey();
let broker: MosquittoInstance;
let registry: RegistryInstance;
let root: string;
let dir: string;
let img: string;
let keyFile: string;
let agent: AgentProcess;

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);

beforeAll(async () => {
  requireBuilt();
  [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  await pushBusyboxImage(registry, 'fleet/compose', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/fleet/compose:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-compose-fleet-root-'));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-compose-fleet-'));
  keyFile = fleetKey.writePrivate(dir);
  const observer = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'compose-fleet-observer' });
  try {
    const inbox: InboxMessage[] = [];
    recordMessages(observer, inbox);
    await observer.subscribeAsync(`berth/v1/${DEVICE}/status`, { qos: 1 });
    agent = spawnAgent(root, ['--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '60s', '--no-governor'], fleetKey);
    await until(() => inbox.find((m) => m.payload.online === true), 30_000, 'agent online');
  } finally {
    await observer.endAsync();
  }
}, 120_000);

afterAll(async () => {
  if (agent) await stopProcess(agent.proc);
  if (root) {
    const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
    if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  }
  await Promise.all([broker?.stop(), registry?.stop()]);
  for (const d of [root, dir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

/** `berth fleet deploy FILE --json` to the device; the device's outcome row. */
async function fleetDeploy(file: string): Promise<Record<string, unknown>> {
  const r = await runBerth(['fleet', 'deploy', file, '--device', DEVICE, '--json', '--timeout', '90s', '--broker', broker.url, '--signing-key', keyFile]);
  const summary = JSON.parse(r.stdout || '{}') as { devices?: Array<Record<string, unknown>> };
  if (!summary.devices) throw new Error(`berth fleet deploy: ${r.code} ${r.stderr}`);
  return summary.devices[0]!;
}

/** The one running container of service `svc` and what it printed. */
function serviceOutput(svc: string): { name: string; logs: string } {
  const rows = JSON.parse(berth('ps', '--json').stdout || '[]') as Array<{ name: string }>;
  const mine = rows.filter((c) => c.name.startsWith(`${svc}.`));
  expect(mine.map((c) => c.name)).toHaveLength(1);
  return { name: mine[0]!.name, logs: berth('logs', mine[0]!.name).stdout };
}

describe('a compose file through berth fleet deploy and the agent', () => {
  // Shell text in the file doubles its `$`, as compose files do: the container must see one `$`.
  const composeText = () => [
    'services:',
    '  app:',
    `    image: ${img}`,
    '    network_mode: none',
    '    stop_grace_period: 1s',
    // `$${PRICE}` twice interpolated would be empty; `$$(…)` never interpolated would print a PID.
    '    command: ["sh", "-c", "echo \\"price=$$PRICE braced=$${PRICE} sub=$$(echo ok) lit=$$LITERAL cfg=$$(cat /etc/greeting) banner=$$(cat /etc/banner)\\"; exec sleep 3600"]',
    '    environment:',
    '      PRICE: "$$5"',
    '      LITERAL: "a$${B}c"',
    '    configs:',
    '      - source: greeting',
    '        target: /etc/greeting',
    '      - source: banner',
    '        target: /etc/banner',
    'configs:',
    '  greeting:',
    '    file: ./greeting.txt',
    '  banner:',
    '    content: "costs $$5"',
    'x-berth:',
    '  update: {health_window: 0s}',
  ].join('\n');

  it('gives the container one literal $ for each $$, in the command, the environment and a config', async () => {
    fs.writeFileSync(path.join(dir, 'greeting.txt'), 'one');
    fs.writeFileSync(path.join(dir, 'compose.yaml'), composeText());
    expect(await fleetDeploy(path.join(dir, 'compose.yaml'))).toMatchObject({ outcome: 'applied' });
    const { logs } = await until(() => {
      const o = serviceOutput('app');
      return o.logs.includes('\n') && o;
    }, 15_000, 'the service printed');
    expect(logs).toBe('price=$5 braced=$5 sub=ok lit=a${B}c cfg=one banner=costs $5\n');
  }, 150_000);

  it('recreates the service when only the config file beside the compose file changed', async () => {
    const before = serviceOutput('app').name;
    fs.writeFileSync(path.join(dir, 'greeting.txt'), 'two');
    expect(await fleetDeploy(path.join(dir, 'compose.yaml'))).toMatchObject({ outcome: 'applied' });
    const after = await until(() => {
      const o = serviceOutput('app');
      return o.name !== before && o.logs.includes('\n') && o;
    }, 15_000, 'the new container printed');
    expect(after.logs).toBe('price=$5 braced=$5 sub=ok lit=a${B}c cfg=two banner=costs $5\n');
  }, 150_000);
});
