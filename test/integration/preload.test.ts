// Preloaded cards (issue 19) on this machine: `berth flash --preload` puts the app and its images for
// the card's architecture into the flashed image's state root (checked with debugfs, not berth's
// readers); an agent given such a state root with the registry stopped loads the images and runs the
// app as revision 0, also when killed with -9 mid-way; a refusal names the sizes when the images do not
// fit; and a signed fleet deploy (revision 1) replaces the preloaded app. The arm64 VM proof of a
// booted card is test/arm/preloaded-boot.test.ts.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRELOAD_DIR } from '../../src/agent/preload.js';
import { buildBundle } from '../../src/flash/bundle.js';
import { Ext4Volume } from '../../src/flash/ext4.js';
import { installPreload, preparePreload, readPreloadApp } from '../../src/flash/preload.js';
import { hostPaths } from '../../src/host/paths.js';
import { spawnAgent, stopProcess, until, type AgentProcess } from '../helpers/agent-process.js';
import { berthSync, runBerth } from '../helpers/berth-cli.js';
import { REPO, requireBuilt } from '../helpers/dist.js';
import { platformString, pushBusyboxImage, tarOf } from '../helpers/images/build.js';
import { buildPiImage } from '../helpers/pi-image.js';
import { startMosquitto } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { testFleetKey } from '../helpers/signing.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

let work: string;
let registry: RegistryInstance | undefined;
let image: string;
let digests: Record<string, string>;
let compose: string;
let appImage: string;
const roots: string[] = [];

/** The flashed image's root file system, read with debugfs. */
async function cardFile(img: string, p: string): Promise<string | undefined> {
  const { stdout } = await run('sfdisk', ['--json', img]);
  const start = (JSON.parse(stdout) as { partitiontable: { partitions: Array<{ start: number }> } }).partitiontable.partitions[1]!.start * 512;
  const r = await run('debugfs', ['-R', `cat ${p}`, `${img}?offset=${start}`], { maxBuffer: 1 << 28 });
  return /File not found/.test(r.stderr) ? undefined : r.stdout;
}

beforeAll(async () => {
  requireBuilt();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-preload-'));
  registry = await startRegistry();
  // A second layer of 8 MiB of incompressible bytes: the load takes long enough to be killed in the middle.
  const big = crypto.randomBytes(8 * MiB);
  const built = await pushBusyboxImage(registry, 'preload/app', 'v1', { arches: ['amd64', 'arm64', 'armhf', 'armel'], extraLayers: [await tarOf([{ name: 'filler', content: big }])] });
  digests = Object.fromEntries(built.manifests.map((m) => [platformString(m.platform), m.digest]));
  appImage = `${registry.host}/preload/app:v1`;
  compose = path.join(work, 'compose.yaml');
  fs.writeFileSync(compose, [
    'services:', '  web:', `    image: ${appImage}`, '    command: ["sh", "-c", "echo preloaded-app-up; exec sleep 3600"]',
    '    network_mode: none', '    stop_grace_period: 1s', 'x-berth:', '  update:', '    health_window: 1s', '',
  ].join('\n'));
}, 300_000);

afterAll(async () => {
  for (const root of roots) {
    const left = JSON.parse(berthSync(['--root', root, 'ps', '-a', '--json']).stdout || '[]') as Array<{ name: string }>;
    if (left.length > 0) berthSync(['--root', root, 'rm', '-f', ...left.map((c) => c.name)]);
  }
  await registry?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('berth flash --preload', () => {
  it('puts the app and its arm64 images (only those) into the card\'s state root; the card checks clean', async () => {
    const bundle = await buildBundle({ arch: 'arm64', packageRoot: REPO, log: (l) => console.log(`bundle: ${l}`) });
    image = await buildPiImage(path.join(work, 'raspios-arm64.img'), { rootMiB: 400 });
    testFleetKey().writePrivate(work);
    fs.writeFileSync(path.join(work, 'fleet.yaml'), 'broker: mqtt://127.0.0.1:1\ninsecure: true\ncredentials: devices\nsigningKey: fleet-key.key\n');
    fs.mkdirSync(path.join(work, 'devices'));
    fs.writeFileSync(path.join(work, 'devices', 'pi-pre.password'), 'secret\n');
    const out = path.join(work, 'pi-pre.img');
    const r = await runBerth(['--root', path.join(work, 'operator'), 'flash', image, '--fleet', path.join(work, 'fleet.yaml'), '--id', 'pi-pre', '--out', out, '--bundle', bundle, '--preload', compose]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/preloading .*preload\/app:v1: [\d.]+ MiB on the card; loading them on first boot needs/);
    const app = JSON.parse((await cardFile(out, '/var/lib/berth/preload/app.json'))!);
    expect(app.services.web).toMatchObject({ image: appImage, network_mode: 'none' });
    const index = JSON.parse((await cardFile(out, '/var/lib/berth/preload/images/index.json'))!);
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]).toMatchObject({ digest: digests['linux/arm64'], platform: { architecture: 'arm64' } });
    const manifest = JSON.parse((await cardFile(out, `/var/lib/berth/preload/images/blobs/sha256/${digests['linux/arm64']!.slice(7)}`))!);
    expect(manifest.layers.length).toBeGreaterThanOrEqual(2);
    const { stdout } = await run('sfdisk', ['--json', out]);
    const start = (JSON.parse(stdout) as { partitiontable: { partitions: Array<{ start: number }> } }).partitiontable.partitions[1]!.start * 512;
    await run('e2fsck', ['-fn', `${out}?offset=${start}`]);
  }, 600_000);

  it('refuses, naming both sizes, when the images do not fit the root file system; nothing is written', async () => {
    const img = path.join(work, 'tiny-root.img');
    await run('mkfs.ext4', ['-q', '-F', img, '6M']);
    const app = await readPreloadApp(compose, process.env, () => undefined);
    const p = await preparePreload({ app, access: { root: path.join(work, 'operator'), env: process.env }, host: hostPaths('/'), version: 'test', log: () => undefined }, ['linux/arm64']);
    try {
      const vol = new Ext4Volume(img, 0);
      await expect(installPreload(vol, p, () => undefined)).rejects.toThrow(/the preloaded images \(.*preload\/app:v1\) need (8|9)\.\d MiB in the card's root file system, which has [\d.]+ [KM]iB free/);
      expect(await vol.lookup('/var/lib/berth')).toBeUndefined();
    } finally {
      p.remove();
    }
  }, 120_000);
});

describe('the agent adopts a preload on its first start, with no registry', () => {
  /** A state root holding a preload for this machine's platform, as flash writes one for a card. */
  async function preloadedRoot(): Promise<string> {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-preload-root-'));
    roots.push(root);
    const app = await readPreloadApp(compose, process.env, () => undefined);
    const p = await preparePreload({ app, access: { root: path.join(work, 'operator'), env: process.env }, host: hostPaths('/'), version: 'test', log: () => undefined }, ['linux/amd64']);
    try {
      fs.cpSync(p.dir, path.join(root, PRELOAD_DIR), { recursive: true });
    } finally {
      p.remove();
    }
    return root;
  }
  const agentOf = (root: string, args: string[] = []): AgentProcess => spawnAgent(root, ['--no-governor', '--backoff-base', '200ms', ...args]);
  const applied = (a: AgentProcess, revision: number) => a.lines.find((l) => l.event === 'deploy' && l.revision === revision && l.status === 'applied');
  const containers = (root: string) => JSON.parse(berthSync(['--root', root, 'ps', '-a', '--json']).stdout || '[]') as Array<Record<string, any>>;
  let scenarioRoots: string[];

  beforeAll(async () => {
    // Each scenario's state root is prepared while the registry is still there; then it goes.
    scenarioRoots = [await preloadedRoot(), await preloadedRoot(), await preloadedRoot(), await preloadedRoot()];
    await registry!.stop();
    registry = undefined;
  }, 300_000);

  it('loads the images, runs the app as revision 0, and removes the preload', async () => {
    const root = scenarioRoots[0]!;
    const agent = agentOf(root);
    try {
      await until(() => applied(agent, 0), 60_000, 'revision 0 applied');
      expect(agent.lines.find((l) => l.event === 'preload-adopted')).toMatchObject({ revision: 0, services: ['web'], images: [expect.stringMatching(/preload\/app:v1$/)] });
      const cs = containers(root);
      expect(cs).toHaveLength(1);
      expect(cs[0]).toMatchObject({ state: 'running' });
      expect(berthSync(['--root', root, 'logs', cs[0]!.name]).stdout).toMatch(/preloaded-app-up/);
      expect(fs.existsSync(path.join(root, PRELOAD_DIR))).toBe(false);
    } finally {
      await stopProcess(agent.proc);
    }
    // A restart does it no second time.
    const again = agentOf(root);
    try {
      await until(() => again.lines.some((l) => l.event === 'agent-started'), 30_000, 'agent started');
      await until(() => applied(again, 0), 60_000, 'revision 0 resumed');
      expect(again.lines.some((l) => /^preload-/.test(l.event))).toBe(false);
      expect(containers(root)).toHaveLength(1);
    } finally {
      await stopProcess(again.proc);
    }
  }, 180_000);

  for (const [n, at] of [[1, 'preload-loading'], [2, 'preload-adopted']] as const) {
    it(`kill -9 at ${at}: the next start finishes, with one container and the preload gone`, async () => {
      const root = scenarioRoots[n]!;
      const first = agentOf(root);
      await until(() => first.lines.some((l) => l.event === at), 60_000, at);
      await stopProcess(first.proc, 'SIGKILL');
      const second = agentOf(root);
      try {
        // On failure, what the second agent did says why (CI shows no agent output otherwise).
        await until(() => applied(second, 0), 90_000, 'revision 0 applied after the kill').catch((err: Error) => {
          throw new Error(`${err.message}; the agent logged: ${JSON.stringify(second.lines.map(({ time: _t, ...l }) => l))}`);
        });
        const cs = containers(root);
        expect(cs.filter((c) => c.state === 'running')).toHaveLength(1);
        expect(fs.existsSync(path.join(root, PRELOAD_DIR))).toBe(false);
        expect((JSON.parse(berthSync(['--root', root, 'images', '--json']).stdout) as Array<{ name: string }>).map((i) => i.name)).toEqual([appImage]);
      } finally {
        await stopProcess(second.proc);
      }
    }, 240_000);
  }

  it('a signed fleet deploy (revision 1) replaces the preloaded app', async () => {
    const root = scenarioRoots[3]!;
    const broker = await startMosquitto();
    const fleetKey = testFleetKey();
    const agent = spawnAgent(root, ['--broker', broker.url, '--device-id', 'pre-1', '--no-governor', '--backoff-base', '200ms'], fleetKey);
    const operator = await connectAsync(broker.url);
    try {
      await until(() => applied(agent, 0), 60_000, 'revision 0 applied');
      const reported: any[] = [];
      operator.on('message', (t, p) => t.endsWith('/reported') && p.length > 0 && reported.push(JSON.parse(p.toString())));
      await operator.subscribeAsync('berth/v1/pre-1/reported', { qos: 1 });
      await until(() => reported.find((r) => r.revision === 0 && r.status === 'applied' && r.services.web?.state === 'running'), 30_000, 'reported revision 0');
      const desired = { revision: 1, services: { web: { image: appImage, command: ['sh', '-c', 'echo fleet-app-up; exec sleep 3600'], network_mode: 'none', stop_grace_period: '1s' } }, update: { health_window: '1s' } };
      await operator.publishAsync('berth/v1/pre-1/desired', fleetKey.desired('pre-1', desired), { qos: 1, retain: true });
      await until(() => applied(agent, 1), 60_000, 'revision 1 applied');
      const cs = containers(root).filter((c) => c.state === 'running');
      expect(cs).toHaveLength(1);
      expect(berthSync(['--root', root, 'logs', cs[0]!.name]).stdout).toMatch(/fleet-app-up/);
      await until(() => reported.find((r) => r.revision === 1 && r.status === 'applied'), 30_000, 'reported revision 1');
    } finally {
      await operator.publishAsync('berth/v1/pre-1/desired', '', { retain: true }).catch(() => undefined);
      await operator.endAsync();
      await stopProcess(agent.proc);
      await broker.stop();
    }
  }, 180_000);
});
