// Agent self-update on this machine (issue 20, docs/upgrade.md): bundles pushed as one multi-arch index
// to a real registry, fetched and verified by digest (a tampered one refused), unpacked side by side,
// switched, and the launcher's trial: confirmed, rolled back when the new agent exits at start, rolled
// back when it never confirms (no broker) within a short window. A real container keeps its pid and
// start time through all of it.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBundleIndex } from '../../src/agent/upgrade/artifact.js';
import { fetchBundle } from '../../src/agent/upgrade/fetch.js';
import { InstallLayout } from '../../src/agent/upgrade/layout.js';
import { Upgrader, versionName } from '../../src/agent/upgrade/upgrader.js';
import { ContentStore } from '../../src/image/content/store.js';
import { parsePlatform } from '../../src/image/platform.js';
import { RegistryClient } from '../../src/image/registry/client.js';
import { undiciTrap, until } from '../helpers/agent-process.js';
import { berthSync } from '../helpers/berth-cli.js';
import { REPO, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { testFleetKey } from '../helpers/signing.js';
import { runBerth } from '../helpers/berth-cli.js';
import { LauncherService, makeBundleDir, makePrefix } from '../helpers/upgrade.js';

const execFileP = promisify(execFile);
let registry: RegistryInstance;
let client: RegistryClient;
let work: string;
let root: string;
let img: string;
const indexes: Record<string, string> = {};
const AMD64 = [parsePlatform('linux/amd64')];

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);
const inspect = (name: string) => (JSON.parse(berth('inspect', name).stdout) as Array<Record<string, any>>)[0]!;
const free = (): number => 2 ** 40;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  client = new RegistryClient(registry.host, { retry: { attempts: 2, baseDelayMs: 50 } });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-upgrade-'));
  root = path.join(work, 'root');
  await pushBusyboxImage(registry, 'upgrade/busybox', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/upgrade/busybox:v1`;
  const dir = (n: string, v: string, k: 'real' | 'exits') => makeBundleDir(path.join(work, 'bundles', n), v, k);
  dir('v1', '0.0.1-test', 'real');
  // Each release is one index with an arm64 entry too: the device must pick its own platform.
  // v2 through the script an operator runs; v3 and v4 through the module it uses.
  const script = await execFileP(process.execPath, [path.join(REPO, 'scripts', 'bundle-push.mjs'), `${registry.host}/berth/agent:0.0.2-test`,
    '--dir', `linux/amd64=${dir('v2', '0.0.2-test', 'real')}`, '--dir', `linux/arm64=${dir('v2-arm64', '0.0.2-test', 'exits')}`, '--root', root]);
  indexes.v2 = /@(sha256:[a-f0-9]{64})$/.exec(script.stdout.trim())![1]!;
  for (const [name, version, kind] of [['v3', '0.0.3-test', 'exits'], ['v4', '0.0.4-test', 'real']] as const) {
    const pushed = await pushBundleIndex(client, 'berth/agent', version, [
      { platform: 'linux/amd64', dir: dir(name, version, kind) },
      { platform: 'linux/arm64', dir: dir(`${name}-arm64`, version, 'exits') },
    ]);
    indexes[name] = pushed.digest;
  }
}, 120_000);

afterAll(async () => {
  if (root && fs.existsSync(root)) {
    const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
    if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  }
  client?.close();
  await registry?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('agent bundle artifact', () => {
  it('is one index with a manifest per platform; the device unpacks its own platform\'s bundle, verified', async () => {
    const index = JSON.parse((await client.getManifest('berth/agent', indexes.v2!)).bytes.toString()) as { manifests: Array<{ platform: { architecture: string } }>; annotations: Record<string, string> };
    expect(index.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);
    expect(index.annotations['org.opencontainers.image.version']).toBe('0.0.2-test');
    const content = new ContentStore(path.join(work, 'content-ok'));
    const dest = path.join(work, 'unpacked-ok');
    const got = await fetchBundle({ client, repository: 'berth/agent', digest: indexes.v2!, platforms: AMD64, content, freeBytes: free, signal: new AbortController().signal }, dest);
    expect(got.info.berth).toBe('0.0.2-test');
    expect(fs.existsSync(path.join(dest, 'dist', 'bundle', 'berth.mjs'))).toBe(true);
    expect(fs.statSync(path.join(dest, 'bin', 'berth')).mode & 0o111).not.toBe(0);
  });

  it('refuses a tampered bundle, naming the digest, and leaves nothing unpacked', async () => {
    // A second release whose layer bytes are then altered in the registry's own storage.
    const dir = makeBundleDir(path.join(work, 'bundles', 'tampered'), '0.0.9-test', 'exits');
    const pushed = await pushBundleIndex(client, 'berth/tampered', '0.0.9-test', [{ platform: 'linux/amd64', dir }]);
    const layer = pushed.platforms[0]!.layer;
    const hex = layer.slice('sha256:'.length);
    const data = path.join(registry.dir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const bytes = fs.readFileSync(data);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0xff;
    fs.writeFileSync(data, bytes);
    const dest = path.join(work, 'unpacked-tampered');
    const content = new ContentStore(path.join(work, 'content-tampered'));
    const fetching = fetchBundle({ client, repository: 'berth/tampered', digest: pushed.digest, platforms: AMD64, content, freeBytes: free, signal: new AbortController().signal }, dest);
    await expect(fetching).rejects.toThrow(new RegExp(`${layer}.*failed verification`));
    expect(fs.existsSync(dest)).toBe(false);
    expect(content.has(layer)).toBe(false);
    expect(content.partials()).toEqual([]);
  });

  it('refuses to start when the disk cannot hold the bundle', async () => {
    const content = new ContentStore(path.join(work, 'content-full'));
    const fetching = fetchBundle({ client, repository: 'berth/agent', digest: indexes.v2!, platforms: AMD64, content, freeBytes: () => 1000, signal: new AbortController().signal }, path.join(work, 'unpacked-full'));
    await expect(fetching).rejects.toMatchObject({ category: 'resource', message: expect.stringMatching(/not enough space .* 1000 free/) });
  });
});

describe('upgrade and trial through the launcher', () => {
  let prefix: string;
  let layout: InstallLayout;
  let service: LauncherService | undefined;

  const upgrader = (windowS: number, restart: () => void) => new Upgrader({
    layout, client: () => client, platforms: AMD64, freeBytes: free, windowS, restart, log: () => undefined,
  });
  const started = (s: LauncherService) => s.lines.filter((l) => l.event === 'agent-started');

  beforeAll(() => {
    prefix = path.join(work, 'opt-berth');
    makePrefix(prefix, '0.0.1-test', path.join(work, 'bundles', 'v1'));
    layout = new InstallLayout(prefix);
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('v1 → v2: the new agent confirms its trial; the workload keeps its pid and start time', async () => {
    // Under the undici trap (agent-process.ts): Node 22's agent, in lite mode, crashed at start on touching it.
    const trap = undiciTrap(work);
    service = new LauncherService(prefix, ['--root', root, 'agent', '--no-governor'], { env: trap.env });
    service.start();
    await until(() => trap.caught() || started(service!).length === 1, 20_000, 'v1 started');
    expect(trap.caught()).toBe('');
    expect(started(service)[0]).toMatchObject({ installed: '0.0.1-test', onTrial: false });
    expect(berth('run', '-d', '--name', 'web', img, 'sleep', '600').code).toBe(0);
    const before = inspect('web').State as { Pid: number; StartedAt: string };

    const s = service;
    const out = await upgrader(60, () => void s.restart()).upgrade({ ref: `${registry.host}/berth/agent:0.0.2-test`, digest: indexes.v2! }, new AbortController().signal);
    const v2 = versionName('0.0.2-test', indexes.v2!);
    expect(out).toEqual({ kind: 'switched', version: v2, previous: '0.0.1-test' });
    // Confirming writes the result, then removes the trial record (the decision): wait for both.
    await until(() => layout.result()?.state === 'upgraded' && layout.trial() === undefined && service!.lines.some((l) => l.event === 'upgrade-confirmed'), 30_000, 'v2 confirmed');
    expect(started(service).at(-1)).toMatchObject({ installed: v2, onTrial: true });
    expect(layout.linked('current')).toBe(v2);
    expect(layout.linked('previous')).toBe('0.0.1-test');
    expect(service.lines.some((l) => l.event === 'upgrade-confirmed' && l.version === v2)).toBe(true);
    expect(inspect('web').State).toMatchObject({ Status: 'running', Pid: before.Pid, StartedAt: before.StartedAt });
    expect(trap.caught()).toBe('');
  }, 90_000);

  it('v2 → v3 that exits at start: the launcher rolls back to v2 by itself and says why; the workload is untouched', async () => {
    const before = inspect('web').State as { Pid: number; StartedAt: string };
    const v2 = layout.linked('current')!;
    const s = service!;
    const runsBefore = started(s).length;
    await upgrader(60, () => void s.restart()).upgrade({ ref: `${registry.host}/berth/agent:0.0.3-test`, digest: indexes.v3! }, new AbortController().signal);
    // The launcher writes the result first, moves current, removes the trial record last.
    await until(() => layout.result()?.state === 'rolled-back' && layout.trial() === undefined, 30_000, 'rolled back');
    expect(layout.result()).toMatchObject({ to: versionName('0.0.3-test', indexes.v3!), from: v2, cause: expect.stringContaining('exited with status 3 before it confirmed') });
    expect(layout.linked('current')).toBe(v2);
    expect(layout.trial()).toBeUndefined();
    await until(() => started(s).length > runsBefore, 20_000, 'v2 running again');
    expect(started(s).at(-1)).toMatchObject({ installed: v2, onTrial: false });
    expect(inspect('web').State).toMatchObject({ Status: 'running', Pid: before.Pid, StartedAt: before.StartedAt });
  }, 90_000);

  it('v2 → v4 that never reaches its broker: rolled back when the (short) window ends, naming the last stage', async () => {
    await service!.stop();
    // Every version gets the same arguments; only the one on trial must reach the broker (nothing listens there).
    const s = new LauncherService(prefix, ['--root', root, 'agent', '--no-governor', '--broker', 'mqtt://127.0.0.1:9', '--device-id', 'upgrade-1']);
    service = s;
    s.start();
    await until(() => started(s).length === 1, 20_000, 'v2 started');
    const v2 = layout.linked('current')!;
    const before = inspect('web').State as { Pid: number; StartedAt: string };
    await upgrader(6, () => void s.restart()).upgrade({ ref: `${registry.host}/berth/agent:0.0.4-test`, digest: indexes.v4! }, new AbortController().signal);
    await until(() => started(s).some((l) => l.installed === versionName('0.0.4-test', indexes.v4!)), 20_000, 'v4 on trial');
    await until(() => layout.result()?.state === 'rolled-back' && layout.trial() === undefined, 30_000, 'rolled back');
    expect(layout.result()!.cause).toMatch(/did not confirm within 6 s \(last stage: reconciled\)/);
    expect(layout.linked('current')).toBe(v2);
    await until(() => started(s).at(-1)?.installed === v2, 20_000, 'v2 running again');
    expect(inspect('web').State).toMatchObject({ Status: 'running', Pid: before.Pid, StartedAt: before.StartedAt });
    // Versions other than current and previous go once an upgrade is confirmed; the failed ones stay until then.
    expect(layout.installed()).toContain(v2);
  }, 90_000);
});

describe('berth fleet upgrade over MQTT', () => {
  let broker: MosquittoInstance;
  let service: LauncherService | undefined;
  const fleetKey = testFleetKey();

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await service?.stop();
    await broker?.stop();
  });

  it('stages the signed bundle like a deploy; the device upgrades, confirms, and its workload never restarts', async () => {
    const prefix = path.join(work, 'opt-berth-mqtt');
    makePrefix(prefix, '0.0.1-test', path.join(work, 'bundles', 'v1'));
    const layout = new InstallLayout(prefix);
    const config = fleetKey.agentConfig(work);
    const keyFile = fleetKey.writePrivate(work);
    const s = new LauncherService(prefix, ['--root', root, 'agent', '--no-governor', '--broker', broker.url, '--device-id', 'up-1', '--config', config]);
    service = s;
    s.start();
    await until(() => s.lines.some((l) => l.event === 'broker-connected'), 20_000, 'agent online');
    const fleet = (...args: string[]) => runBerth(['fleet', ...args, '--broker', broker.url, '--signing-key', keyFile]);
    const file = path.join(work, 'app.yaml');
    fs.writeFileSync(file, `services:\n  app:\n    image: ${img}\n    command: ["sleep", "600"]\n    stop_grace_period: 1s\n`);
    const deployed = await fleet('deploy', file, '--device', 'up-1', '--timeout', '60s');
    expect(deployed.code, deployed.stdout + deployed.stderr).toBe(0);
    const app = (JSON.parse(berth('ps', '--json').stdout) as Array<{ name: string; id: string }>).find((c) => c.name.includes('app'))!;
    const before = inspect(app.id).State as { Pid: number; StartedAt: string };

    const up = await fleet('upgrade', `${registry.host}/berth/agent:0.0.2-test`, '--device', 'up-1', '--timeout', '90s', '--json');
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const summary = JSON.parse(up.stdout) as { counts: Record<string, number>; devices: Array<{ outcome: string }> };
    expect(summary.counts.applied).toBe(1);
    const v2 = versionName('0.0.2-test', indexes.v2!);
    expect(layout.linked('current')).toBe(v2);
    expect(layout.result()).toMatchObject({ state: 'upgraded', to: v2, from: '0.0.1-test' });
    const rows = JSON.parse((await fleet('status', '--json')).stdout) as Array<Record<string, any>>;
    expect(rows.find((r) => r.device === 'up-1')).toMatchObject({ agent: v2, status: 'applied' });
    expect(inspect(app.id).State).toMatchObject({ Status: 'running', Pid: before.Pid, StartedAt: before.StartedAt });
  }, 180_000);
});
