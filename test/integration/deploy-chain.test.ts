import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeployEvent } from '../../src/agent/reconcile/deployer.js';
import { detectBoard } from '../../src/board/index.js';
import { hostPaths } from '../../src/host/paths.js';
import { BerthRoot } from '../../src/root.js';
import { appModel, network, shellCheck, volume } from '../helpers/app-model.js';
import { berthSync } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

// The deployer on a real engine, a real bridge network and real containers: a sensor → broker → store
// chain in `depends_on: service_healthy` order (issue 17), with the app's network and named volume
// created by the deploy (issue 16). Each service refuses to come up when the one before it is not
// serving yet, so a start out of order fails the deploy. The app is built as the model (the compose
// file's `depends_on` is the compose stage's part; this drives the deployer with it directly).

let registry: RegistryInstance;
let root: string;
let img: string;
const berth = (...args: string[]) => berthSync(['--root', root, ...args], { BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' });

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'chain/busybox', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/chain/busybox:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-deploy-chain-'));
  expect(berth('pull', img).code).toBe(0);
}, 120_000);

afterAll(async () => {
  if (root !== undefined) {
    const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
    if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
    berth('network', 'rm', 'chain_default');
    fs.rmSync(root, { recursive: true, force: true });
  }
  await registry?.stop();
});

/** Fetches http://HOST/FILE into /tmp/FILE, a few tries, or exits 1: the service cannot come up without it. */
const fetchOrDie = (host: string, file: string): string => `for i in 1 2 3; do wget -q -O /www/${file} http://${host}/${file} && break; [ $i = 3 ] && exit 1; sleep 0.2; done`;
const serve = 'exec httpd -f -p 80 -h /www';

describe('deploying a depends_on chain', () => {
  it('starts sensor → broker → store each once the one before is healthy, on the app network, with its volume', async () => {
    const host = hostPaths('/');
    const parts = new BerthRoot({ root, host, env: { PATH: process.env.PATH }, version: 'test', board: detectBoard(host) });
    try {
      const events: DeployEvent[] = [];
      const deployer = await parts.deployer((e) => events.push(e));
      const net = (alias: string) => ({ network: 'chain_default', networkAliases: [alias], stopTimeout: 1 });
      const app = appModel({
        name: 'chain',
        healthWindowMs: 1000,
        networks: [network('chain', 'default')],
        volumes: [volume('chain', 'data')],
        services: {
          // Serves its reading only after 2 s: a broker started before it is healthy would find nothing.
          sensor: { image: img, run: net('sensor'), cmd: ['sh', '-c', `mkdir -p /www; (sleep 2; echo 21.5 > /www/reading) & ${serve}`], healthcheck: shellCheck('test -s /www/reading', 200, 30) },
          broker: {
            image: img, run: net('broker'), cmd: ['sh', '-c', `mkdir -p /www; ${fetchOrDie('sensor', 'reading')}; ${serve}`], healthcheck: shellCheck('test -s /www/reading', 200, 30),
            dependsOn: { sensor: { condition: 'service_healthy' } },
          },
          store: {
            image: img, run: { ...net('store'), volumes: [{ kind: 'volume', source: 'chain_data', target: '/data', readOnly: false }] },
            cmd: ['sh', '-c', `mkdir -p /www; ${fetchOrDie('broker', 'reading')}; cp /www/reading /data/stored; exec sleep 3600`],
            healthcheck: shellCheck('test -s /data/stored', 200, 30),
            dependsOn: { broker: { condition: 'service_healthy' } },
          },
        },
      });
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
      const started = (service: string): number => Date.parse((JSON.parse(berth('inspect', `${service}.h1`).stdout) as Array<{ State: { StartedAt: string } }>)[0]!.State.StartedAt);
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
