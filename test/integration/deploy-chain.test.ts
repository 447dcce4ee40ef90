import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeployEvent } from '../../src/agent/reconcile/deployer.js';
import { detectBoard } from '../../src/board/index.js';
import { readComposeFile } from '../../src/compose/file.js';
import { hostPaths } from '../../src/host/paths.js';
import { BerthRoot } from '../../src/root.js';
import { appModel } from '../helpers/app-model.js';
import { berthSync } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { freePort } from '../helpers/services/ports.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { netTestEnv } from '../helpers/net/test-env.js';

// The deployer on a real engine, a real bridge network and real containers: a sensor → broker → store
// chain in `depends_on: service_healthy` order (issue 17), with the app's network and named volume
// created by the deploy (issue 16). Each service refuses to come up when the one before it is not
// serving yet, so a start out of order fails the deploy. The app comes from a compose file the test
// writes (ports, depends_on, a named volume, ${VAR} from the .env beside it), read by the loader
// `berth deploy` uses.

let registry: RegistryInstance;
let root: string;
let work: string;
let img: string;
const berth = (...args: string[]) => berthSync(['--root', root, ...args], { BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' });

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'chain/busybox', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/chain/busybox:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-deploy-chain-'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-deploy-chain-file-'));
  expect(berth('pull', img).code).toBe(0);
}, 120_000);

afterAll(async () => {
  if (root !== undefined) {
    const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
    if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
    berth('network', 'rm', 'chain_default');
    fs.rmSync(root, { recursive: true, force: true });
  }
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
  await registry?.stop();
});

/** Fetches http://HOST/FILE into /www/FILE, a few tries, or exits 1: the service cannot come up without it. A compose file doubles its `$`. */
const fetchOrDie = (host: string, file: string): string => `for i in 1 2 3; do wget -q -O /www/${file} http://${host}/${file} && break; [ $$i = 3 ] && exit 1; sleep 0.2; done`;
const serve = 'exec httpd -f -p 80 -h /www';
const check = (script: string): string => `    healthcheck: {test: ["CMD-SHELL", ${JSON.stringify(script)}], interval: 200ms, retries: 30}`;

/** The chain as a user writes it: the sensor's reading comes from the .env, the broker publishes its port on loopback. */
function composeFile(port: number): string {
  return [
    'name: chain',
    'services:',
    '  sensor:',
    `    image: ${img}`,
    '    stop_grace_period: 1s',
    '    environment:',
    '      READING: ${SENSOR_READING:?set it in .env}',
    // Serves its reading only after 2 s: a broker started before it is healthy would find nothing.
    `    command: ["sh", "-c", ${JSON.stringify(`mkdir -p /www; (sleep 2; echo $$READING > /www/reading) & ${serve}`)}]`,
    check('test -s /www/reading'),
    '  broker:',
    `    image: ${img}`,
    '    stop_grace_period: 1s',
    `    command: ["sh", "-c", ${JSON.stringify(`mkdir -p /www; ${fetchOrDie('sensor', 'reading')}; ${serve}`)}]`,
    check('test -s /www/reading'),
    `    ports: ["127.0.0.1:${port}:80"]`,
    '    depends_on:',
    '      sensor: {condition: service_healthy}',
    '  store:',
    `    image: ${img}`,
    '    stop_grace_period: 1s',
    `    command: ["sh", "-c", ${JSON.stringify(`mkdir -p /www; ${fetchOrDie('broker', 'reading')}; cp /www/reading /data/stored; exec sleep 3600`)}]`,
    check('test -s /data/stored'),
    '    volumes: ["data:/data"]',
    '    depends_on:',
    '      broker: {condition: service_healthy}',
    'volumes:',
    '  data:',
    'x-berth:',
    '  update: {health_window: 1s}',
    '',
  ].join('\n');
}

describe('deploying a depends_on chain', () => {
  it('starts sensor → broker → store each once the one before is healthy, on the app network, with its volume', async () => {
    const host = hostPaths('/');
    const parts = new BerthRoot({ root, host, env: { PATH: process.env.PATH, ...netTestEnv() }, version: 'test', board: detectBoard(host) });
    try {
      const events: DeployEvent[] = [];
      const deployer = await parts.deployer((e) => events.push(e));
      const port = await freePort();
      fs.writeFileSync(path.join(work, '.env'), 'SENSOR_READING=21.5\n');
      fs.writeFileSync(path.join(work, 'compose.yaml'), composeFile(port));
      const app = await readComposeFile(path.join(work, 'compose.yaml'), { env: {}, stateRoot: root });
      const containerOf = (service: string): string => app.services.get(service)!.run.name;
      const outcome = await deployer.apply(app, new AbortController().signal);
      expect(outcome).toEqual({ revision: 1, status: 'applied' });

      const timeline = events.flatMap((e) => {
        if (e.type === 'progress' && ['create-network', 'create-volume', 'start', 'await-dependency'].includes(e.phase)) return [`${e.phase} ${e.service ?? e.network ?? e.volume}`];
        if (e.type === 'health' && e.health === 'healthy') return [`${e.service} healthy`];
        return [];
      });
      expect(timeline).toEqual([
        'create-volume chain_data', 'create-network chain_default',
        'start sensor', 'await-dependency sensor', 'sensor healthy', 'start broker', 'await-dependency broker', 'broker healthy', 'start store',
        'sensor healthy', 'broker healthy', 'store healthy',
      ]);
      expect(fs.readFileSync(path.join(root, 'volumes/chain_data/_data/stored'), 'utf8')).toBe('21.5\n');
      const inspect = JSON.parse(berth('network', 'inspect', 'chain_default').stdout) as Array<{ Labels: Record<string, string>; Containers: Record<string, unknown> }>;
      expect(inspect[0]!.Labels).toMatchObject({ 'berth.app': 'chain' });
      expect(Object.keys(inspect[0]!.Containers)).toHaveLength(3);
      // The broker's published port serves what the sensor read, from the host.
      expect(await (await fetch(`http://127.0.0.1:${port}/reading`, { signal: AbortSignal.timeout(3000) })).text()).toBe('21.5\n');
      const started = (service: string): number => Date.parse((JSON.parse(berth('inspect', containerOf(service)).stdout) as Array<{ State: { StartedAt: string } }>)[0]!.State.StartedAt);
      expect(started('broker') - started('sensor')).toBeGreaterThanOrEqual(1900);
      expect(started('store')).toBeGreaterThan(started('broker'));

      // A revision without them: the containers go, then the network the deploy made (no bridge left behind); the volume stays.
      const bridge = (JSON.parse(berth('network', 'inspect', 'chain_default').stdout) as Array<{ Options: Record<string, string> }>)[0]!.Options['com.docker.network.bridge.name']!;
      expect(await deployer.apply(appModel({ name: 'chain', revision: 2, services: {} }), new AbortController().signal)).toEqual({ revision: 2, status: 'applied' });
      expect(berth('ps', '-a', '--json').stdout.trim()).toBe('[]');
      expect(berth('network', 'inspect', 'chain_default').code).toBe(4);
      expect(fs.existsSync(`/sys/class/net/${bridge}`)).toBe(false);
      expect(fs.existsSync(path.join(root, 'volumes/chain_data/_data/stored'))).toBe(true);
    } finally {
      parts.close();
    }
  }, 120_000);
});
