import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BERTH_BIN, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

const execFileAsync = promisify(execFile);
let registry: RegistryInstance;
let root: string;
let img: string;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'ctr/busybox', 'v1');
  img = `${registry.host}/ctr/busybox:v1`;
  await pushBusyboxImage(registry, 'ctr/foreign', 'v1');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ctr-'));
  expect(berth('pull', '-q', img).code).toBe(0);
});
afterAll(async () => {
  // Leave nothing running: force-remove whatever a failed test left behind.
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await registry?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

function berthEnv(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(BERTH_BIN, ['--root', root, ...args], { encoding: 'utf8', env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const berth = (...args: string[]) => berthEnv({}, ...args);
const inspect = (name: string) => (JSON.parse(berth('inspect', name).stdout) as Array<Record<string, any>>)[0]!;

describe('berth run in the foreground', () => {
  it('streams stdout and stderr and exits with the container exit code', () => {
    const r = berth('run', '--rm', img, 'sh', '-c', 'echo out; echo err >&2; exit 3');
    expect(r).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect(JSON.parse(berth('ps', '-a', '--json').stdout)).toEqual([]);
  });

  it('hands options after the image to the command, and applies env, workdir, user and hostname', () => {
    const r = berth('run', '--rm', '-e', 'GREETING=hi', '-w', '/tmp', '-u', '1000:1001', '--hostname', 'box', img, 'sh', '-c', 'echo $GREETING $(pwd) $(id -u):$(id -g) $(hostname)');
    expect(r).toMatchObject({ code: 0, stdout: 'hi /tmp 1000:1001 box\n' });
  });

  it('passes NODE_EXTRA_CA_CERTS through unchanged, though bin/berth keeps Node from loading it at start-up', () => {
    const r = berthEnv({ NODE_EXTRA_CA_CERTS: '/nonexistent/extra-ca.pem' }, 'run', '--rm', '-e', 'NODE_EXTRA_CA_CERTS', img, 'sh', '-c', 'echo $NODE_EXTRA_CA_CERTS');
    // Node would warn on stderr about a file it cannot load; deferred, only registry TLS reads it.
    expect(r).toMatchObject({ code: 0, stdout: '/nonexistent/extra-ca.pem\n', stderr: '' });
  });

  it('--read-only, a read-only bind mount and a named volume behave as docker', () => {
    const host = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bind-'));
    fs.writeFileSync(path.join(host, 'f'), 'from host');
    const r = berth('run', '--rm', '--read-only', '-v', `${host}:/data:ro`, '-v', 'keep:/keep', img, 'sh', '-c', 'cat /data/f; touch /x 2>/dev/null || echo rootro; touch /data/y 2>/dev/null || echo bindro; echo saved > /keep/v');
    expect(r).toMatchObject({ code: 0, stdout: 'from hostrootro\nbindro\n' });
    expect(berth('run', '--rm', '-v', 'keep:/keep', img, 'cat', '/keep/v').stdout).toBe('saved\n');
    fs.rmSync(host, { recursive: true });
  });
});

describe('foreign platforms through qemu-user-static (binfmt_misc, flag F)', () => {
  it.each([
    ['linux/arm64', 'aarch64'],
    ['linux/arm/v7', 'armv7l'],
  ])('berth run --rm --platform %s runs that variant: uname -m prints %s', (platform, machine) => {
    const r = berth('run', '--rm', '--platform', platform, `${registry.host}/ctr/foreign:v1`, 'sh', '-c', 'uname -m; cat /etc/berth-platform');
    expect(r.stdout).toBe(`${machine}\n${platform}\n`);
    expect(r.code).toBe(0);
  });
});

describe('detached containers', () => {
  it('run -d, ps, logs --tail, stop with a timeout, start again, rm', async () => {
    const id = berth('run', '-d', '--name', 'ticker', img, 'sh', '-c', 'trap "echo bye; exit 0" TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done').stdout.trim();
    expect(id).toMatch(/^[a-f0-9]{64}$/);
    await new Promise((r) => setTimeout(r, 700));
    expect(berth('ps').stdout).toMatch(/ticker\n$/);
    const state = inspect('ticker').State;
    expect(state).toMatchObject({ Status: 'running', Running: true });
    expect(fs.readFileSync(`/proc/${state.Pid}/cmdline`, 'utf8')).toMatch(/^sh/);
    expect(berth('logs', '--tail', '2', 'ticker').stdout).toMatch(/^tick \d+\ntick \d+\n$/);
    expect(berth('stop', '-t', '5', 'ticker').code).toBe(0);
    expect(inspect('ticker').State).toMatchObject({ Status: 'exited', ExitCode: 0, Running: false });
    expect(berth('logs', '--tail', '1', 'ticker').stdout).toBe('bye\n');
    expect(berth('start', 'ticker').code).toBe(0);
    expect(inspect('ticker').State.Status).toBe('running');
    expect(berth('rm', 'ticker')).toMatchObject({ code: 5, stderr: expect.stringMatching(/is running/) });
    expect(berth('rm', '-f', 'ticker').code).toBe(0);
    expect(berth('inspect', 'ticker').code).toBe(4);
  });

  it('kill -s delivers the signal; a process ignoring SIGTERM is SIGKILLed after the stop timeout', () => {
    berth('run', '-d', '--name', 'stubborn', img, 'sh', '-c', 'trap "" TERM; trap "exit 42" USR1; while true; do sleep 0.1; done');
    expect(berth('stop', '-t', '1', 'stubborn').code).toBe(0);
    expect(inspect('stubborn').State).toMatchObject({ Status: 'exited', ExitCode: 137 });
    berth('start', 'stubborn');
    expect(berth('kill', '-s', 'USR1', 'stubborn').code).toBe(0);
    const deadline = Date.now() + 5000;
    while (inspect('stubborn').State.Running && Date.now() < deadline) spawnSync('sleep', ['0.1']);
    expect(inspect('stubborn').State).toMatchObject({ Status: 'exited', ExitCode: 42 });
    berth('rm', 'stubborn');
  });

  it('containers keep running when the berth process that started them is killed', async () => {
    const child = execFileAsync(BERTH_BIN, ['--root', root, 'run', '--name', 'orphan', img, 'sleep', '30']);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !(berth('ps', '--json').stdout.includes('orphan'))) await new Promise((r) => setTimeout(r, 100));
    child.child.kill('SIGKILL');
    await child.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    expect(inspect('orphan').State).toMatchObject({ Status: 'running', Running: true });
    berth('rm', '-f', 'orphan');
  });

  it('a container stays with the runtime it was created with (crun here), whatever BERTH_RUNTIME says later', () => {
    expect(berthEnv({ BERTH_RUNTIME: 'crun' }, 'run', '-d', '--name', 'oncrun', img, 'sleep', '60').code).toBe(0);
    const i = inspect('oncrun');
    expect(i).toMatchObject({ Runtime: 'crun', State: { Status: 'running' } });
    expect(berthEnv({ BERTH_RUNTIME: 'runc' }, 'rm', '-f', 'oncrun')).toMatchObject({ code: 0, stdout: 'oncrun\n' });
    expect(fs.existsSync(`/proc/${i.State.Pid as number}`)).toBe(false);
  });

  it('stats: --no-stream prints once; streaming refreshes every second with CPU % from the cgroup', async () => {
    berth('run', '-d', '--name', 'busy', img, 'sh', '-c', 'while true; do :; done');
    const once = berth('stats', '--no-stream', '--json', 'busy');
    expect(once.code).toBe(0);
    const [first] = JSON.parse(once.stdout) as Array<Record<string, unknown>>;
    expect(first).toMatchObject({ name: 'busy', measured: true, pids: 1 });
    const child = execFileAsync(BERTH_BIN, ['--root', root, 'stats', '--json', 'busy'], { encoding: 'utf8' });
    let docs: Array<Array<Record<string, any>>> = [];
    const deadline = Date.now() + 10_000;
    let out = '';
    child.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    while (Date.now() < deadline && (docs = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))).length < 3) await new Promise((r) => setTimeout(r, 200));
    child.child.kill('SIGINT');
    await child.catch(() => undefined);
    expect(docs.length).toBeGreaterThanOrEqual(3);
    // A busy loop shows real CPU use (loose bound: the CI machine is shared).
    expect(docs[2]![0]!.cpuPercent).toBeGreaterThan(10);
    berth('rm', '-f', 'busy');
  });

  it('inspect states plainly whether limits are enforced on this host', () => {
    berth('create', '--name', 'limited', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '50', img, 'true');
    const i = inspect('limited');
    expect(i.HostConfig).toMatchObject({ Memory: 64 * 1024 * 1024, NanoCpus: 500_000_000, PidsLimit: 50 });
    expect(i.Limits.CgroupFiles).toMatchObject({ 'memory.max': String(64 * 1024 * 1024), 'cpu.max': '50000 100000', 'pids.max': '50' });
    const unified = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') && /memory/.test(fs.readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8'));
    expect(i.Limits.Enforced).toBe(unified);
    if (!unified) expect(i.Limits.Note).toMatch(/limits not enforced/);
    berth('rm', 'limited');
  });
});

describe('bad input gets a clear error', () => {
  it.each([
    [['run', '--memory', '12q', 'IMG', 'true'], 3, /invalid size "12q"/],
    [['run', '--device', '/dev/i2c-99', 'IMG', 'true'], 4, /\/dev\/i2c-99: no such device/],
    [['run', '--name', 'bad name!', 'IMG', 'true'], 3, /name/],
    [['run', '--restart', 'sometimes', 'IMG', 'true'], 3, /restart/],
    [['run', '--network', 'no-such-net', 'IMG', 'true'], 4, /network no-such-net not found/],
    [['start', 'no-such-container'], 4, /no such container/],
    [['kill', '-s', 'NOPE', 'no-such-container'], 3, /--signal: unknown signal "NOPE"/],
    [['run', 'IMG', '/no/such/binary'], 9, /no such file|not found|executable/i],
  ])('%j → exit %i', (args, code, message) => {
    const r = berth(...args.map((a) => (a === 'IMG' ? img : a)));
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(code);
  });

  it('a name in use is a conflict', () => {
    berth('create', '--name', 'twice', img, 'true');
    expect(berth('create', '--name', 'twice', img, 'true')).toMatchObject({ code: 5, stderr: expect.stringMatching(/already in use/) });
    berth('rm', 'twice');
  });
});
