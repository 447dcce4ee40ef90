import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BERTH_BIN, requireBuilt } from '../helpers/dist.js';
import { FIXTURE_HOSTS } from '../helpers/host-tree.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startFaultProxy, type FaultProxy } from '../helpers/services/fault-proxy.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { berthSync } from '../helpers/berth-cli.js';

const execFileAsync = promisify(execFile);
let registry: RegistryInstance;
let proxy: FaultProxy;
let tmp: string;
let bigLayer: string;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
  await pushBusyboxImage(registry, 'cli/busybox', 'v1');
  const big = await pushBusyboxImage(registry, 'cli/big', 'v1', { arches: ['arm64'], bigLayerMB: 12 });
  bigLayer = big.manifests[0]!.layers.at(-1)!.digest;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-pull-cli-'));
});
afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  spawnSync('umount', [path.join(tmp, 'small')]);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const berth = (root: string, args: string[], host = 'rpi-zero-2-w') => berthSync(['--root', root, ...args], { BERTH_HOST_ROOT: path.join(FIXTURE_HOSTS, host) });

describe('berth pull, images, inspect, rmi, prune', () => {
  it("picks the board profile's platform: arm/v6 on a Zero W, arm64 on a Zero 2 W", () => {
    const zeroW = path.join(tmp, 'zw');
    const pull = berth(zeroW, ['pull', `${registry.host}/cli/busybox:v1`], 'rpi-zero-w');
    expect(pull.stderr).toBe('');
    expect(pull.code).toBe(0);
    expect(pull.stdout).toMatch(/linux\/arm\/v6, manifest sha256:/);
    expect(pull.stdout).toMatch(/: done /);
    expect(pull.stdout).toMatch(/^pulled .*cli\/busybox:v1/m);
    const inspect = JSON.parse(berth(zeroW, ['image', 'inspect', `${registry.host}/cli/busybox:v1`]).stdout) as Record<string, unknown>;
    expect(inspect).toMatchObject({ platform: 'linux/arm/v6', manifestDigest: expect.stringMatching(/^sha256:/), indexDigest: expect.stringMatching(/^sha256:/) });
    expect(inspect.layers).toHaveLength(2);
    expect((inspect.config as { architecture: string }).architecture).toBe('arm');

    const zero2 = path.join(tmp, 'z2');
    expect(berth(zero2, ['pull', '-q', `${registry.host}/cli/busybox:v1`]).stdout).toMatch(/^127\.0\.0\.1:\d+\/cli\/busybox:v1@sha256:[a-f0-9]{64}\n$/);
    const list = JSON.parse(berth(zero2, ['images', '--json']).stdout) as Array<{ platform: string }>;
    expect(list.map((i) => i.platform)).toEqual(['linux/arm64']);
    expect(berth(zero2, ['images']).stdout).toMatch(/^NAME\s+PLATFORM\s+DIGEST\s+SIZE\s+PULLED\n.*cli\/busybox:v1\s+linux\/arm64/);
  });

  it('--platform overrides the board; an unknown image or platform exits non-zero with a clear message', () => {
    const root = path.join(tmp, 'override');
    expect(berth(root, ['pull', '--platform', 'linux/amd64', '-q', `${registry.host}/cli/busybox:v1`]).code).toBe(0);
    const none = berth(root, ['pull', '--platform', 'linux/s390x', `${registry.host}/cli/busybox:v1`]);
    expect(none.code).toBe(4);
    expect(none.stderr).toMatch(/has no variant for linux\/s390x; it offers: linux\/amd64, linux\/arm64, linux\/arm\/v7, linux\/arm\/v6/);
    const missing = berth(root, ['pull', `${registry.host}/cli/nope:v1`]);
    expect(missing.code).toBe(4);
    const bad = berth(root, ['pull', 'UPPER/Case']);
    expect(bad).toMatchObject({ code: 3, stderr: expect.stringMatching(/invalid image reference/) });
  });

  it('rmi and image prune', () => {
    const root = path.join(tmp, 'rm');
    berth(root, ['pull', '-q', `${registry.host}/cli/busybox:v1`]);
    const rmi = berth(root, ['rmi', `${registry.host}/cli/busybox:v1`]);
    expect(rmi).toMatchObject({ code: 0, stdout: expect.stringMatching(/^removed .*cli\/busybox:v1 \(\d+ blobs, 2 snapshots/) });
    expect(JSON.parse(berth(root, ['images', '--json']).stdout)).toEqual([]);
    expect(JSON.parse(berth(root, ['image', 'prune', '--json']).stdout)).toMatchObject({ blobs: 0, snapshots: 0 });
    expect(berth(root, ['rmi', 'cli/busybox:v1']).code).toBe(4);
  });
});

describe('berth pull survives kill -9 and a full disk', () => {
  const BOARD_ENV = { ...process.env, BERTH_HOST_ROOT: path.join(FIXTURE_HOSTS, 'rpi-zero-2-w') };

  /** Starts a pull of cli/big into `root` and kill -9s it mid-download; its pid and the partial's size. */
  async function killMidDownload(root: string): Promise<{ pid: number; kept: number }> {
    // First attempt: the connection drops after 3 MB, and the resume request then hangs, so the pull is
    // reliably in the middle of a download when it is killed.
    const blob = new RegExp(`/blobs/${bigLayer}`);
    proxy.setFaults([
      { method: 'GET', path: blob, nth: 1, dropAfterBytes: 3_000_000 },
      { method: 'GET', path: blob, nth: 2, delayMs: 20_000 },
    ]);
    const child = spawn(BERTH_BIN, ['--root', root, 'pull', `${proxy.host}/cli/big:v1`], { env: BOARD_ENV, stdio: 'ignore' });
    const partial = path.join(root, 'content', 'ingest', bigLayer.replace(':', '-'));
    const size = (): number => (fs.existsSync(partial) ? fs.statSync(partial).size : 0);
    // Kill once the first attempt's bytes are on disk and nothing more arrives (the resume request hangs).
    let stable = 0;
    for (let i = 0, last = -1; i < 300 && stable < 10; i++, last = size()) {
      await sleep(50);
      stable = size() > 0 && size() === last ? stable + 1 : 0;
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    proxy.setFaults([]);
    return { pid: child.pid!, kept: size() };
  }

  it('killed mid-download, the next pull resumes from the partial blob with a Range request', async () => {
    const root = path.join(tmp, 'kill');
    const { kept } = await killMidDownload(root);
    // Bytes still in socket buffers when the connection dropped are lost; what reached the disk is kept.
    expect(kept).toBeGreaterThan(2_000_000);
    expect(kept).toBeLessThanOrEqual(3_000_000);

    // Asynchronously: the fault proxy lives in this process and must keep serving.
    const resumed = await execFileAsync(BERTH_BIN, ['--root', root, 'pull', `${proxy.host}/cli/big:v1`], { encoding: 'utf8', env: BOARD_ENV });
    expect(resumed.stderr).toBe('');
    expect(proxy.requests.some((q) => q.headers.range === `bytes=${kept}-` && q.status === 206)).toBe(true);
    expect(fs.readdirSync(path.join(root, 'content', 'ingest'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'snapshots', '.tmp'))).toEqual([]);
  });

  it('a pull that gets the pid of the killed one resumes its partial (the download lock died with it)', async () => {
    const root = path.join(tmp, 'pid-reuse');
    const { pid, kept } = await killMidDownload(root);
    expect(kept).toBeGreaterThan(0);
    // The next process created gets ns_last_pid + 1: the killed pull's pid, as after a reboot or a wrap.
    // Another process on the machine (other test files fork too) may take it first: then that attempt is
    // killed at once and we try again.
    let reused: { code: number | null; stderr: string } | undefined;
    for (let attempt = 0; attempt < 50 && !reused; attempt++) {
      fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
      const child = spawn(BERTH_BIN, ['--root', root, 'pull', `${proxy.host}/cli/big:v1`], { env: BOARD_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      if (child.pid !== pid) child.kill('SIGKILL');
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      if (child.pid === pid) reused = { code, stderr };
    }
    expect(reused, `no pull got pid ${pid} again`).toBeDefined();
    expect(reused).toEqual({ code: 0, stderr: '' });
    expect(proxy.requests.some((q) => q.headers.range === `bytes=${kept}-` && q.status === 206)).toBe(true);
    expect(fs.readdirSync(path.join(root, 'content', 'ingest'))).toEqual([]);
  });

  it('a disk too small for the image: a clear error before downloading, and the store stays usable', () => {
    const small = path.join(tmp, 'small');
    fs.mkdirSync(small);
    spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', small]);
    const r = berth(small, ['pull', `${registry.host}/cli/big:v1`]);
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/not enough disk space to pull .*cli\/big:v1: it needs about [\d.]+ MiB .* is free/);
    expect(berth(small, ['images', '--json'])).toMatchObject({ code: 0, stdout: '[]\n' });
    expect(fs.readdirSync(path.join(small, 'content', 'ingest'))).toEqual([]);
  });
});

describe('registry credentials', () => {
  const ALICE = { username: 'alice', password: 'wonderland' };
  let secured: RegistryInstance;
  beforeAll(async () => {
    secured = await startRegistry({ htpasswd: [ALICE] });
    await pushBusyboxImage(secured, 'private/busybox', 'v1', { arches: ['arm64'], auth: ALICE });
  });
  afterAll(async () => secured?.stop());

  it('without credentials: exit 11 with a login hint; berth login stores 0600 credentials that pull then uses', () => {
    const root = path.join(tmp, 'login');
    const denied = berth(root, ['pull', `${secured.host}/private/busybox:v1`]);
    expect(denied.code).toBe(11);
    expect(denied.stderr).toMatch(/berth login/);
    const wrong = spawnSync(BERTH_BIN, ['--root', root, 'login', secured.host, '-u', 'alice', '--password-stdin'], { input: 'nope\n', encoding: 'utf8' });
    expect(wrong.status).toBe(11);
    const login = spawnSync(BERTH_BIN, ['--root', root, 'login', secured.host, '-u', 'alice', '--password-stdin'], { input: 'wonderland\n', encoding: 'utf8' });
    expect(login).toMatchObject({ status: 0, stdout: 'Login Succeeded\n' });
    expect(fs.statSync(path.join(root, 'auth.json')).mode & 0o777).toBe(0o600);
    expect(berth(root, ['pull', '-q', `${secured.host}/private/busybox:v1`]).code).toBe(0);
  });

  it("uses Docker's config.json credentials", () => {
    const dockerConfig = path.join(tmp, 'docker-config');
    fs.mkdirSync(dockerConfig, { recursive: true });
    fs.writeFileSync(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('alice:wonderland').toString('base64') } } }));
    const r = spawnSync(BERTH_BIN, ['--root', path.join(tmp, 'docker-creds'), 'pull', '-q', `${secured.host}/private/busybox:v1`], {
      encoding: 'utf8',
      env: { ...process.env, DOCKER_CONFIG: dockerConfig, BERTH_HOST_ROOT: path.join(FIXTURE_HOSTS, 'rpi-zero-2-w') },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
