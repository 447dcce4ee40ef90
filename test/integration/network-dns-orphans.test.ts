import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BERTH_BIN } from '../helpers/dist.js';
import { berthEnv, berthOn, openNetTestRoot, type NetTestRoot } from '../helpers/net/bridge.js';
import { freePort } from '../helpers/services/ports.js';

// aardvark-dns orphans (issue 16): concurrent berth processes must start one server, and reconciliation
// must stop any other serving berth's config dir. The berth processes here get a network run directory
// of their own (BERTH_NETWORK_RUN_DIR), so the aardvark-dns counted and killed are this file's only,
// never another berth's or podman's. Traffic: containers on this file's bridge only.

const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-dnso-run-'));
const env = { BERTH_NETWORK_RUN_DIR: runDir };
const dnsDir = path.join(runDir, 'netavark', 'aardvark-dns');
let t: NetTestRoot;

beforeAll(async () => {
  t = await openNetTestRoot('dnso', env);
}, 120_000);
afterAll(async () => {
  await t?.close();
  for (const pid of aardvarks()) process.kill(pid, 'SIGKILL');
  fs.rmSync(runDir, { recursive: true, force: true });
});

const berth = berthOn(() => t.root, env);

/** Every aardvark-dns process serving this file's config dir, by its command line. */
function aardvarks(): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).flatMap((e) => {
    try {
      const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      return path.basename(argv[0]!) === 'aardvark-dns' && argv[argv.indexOf('--config') + 1] === dnsDir ? [Number(e)] : [];
    } catch {
      return [];
    }
  });
}
const pidFile = () => Number(fs.readFileSync(path.join(dnsDir, 'aardvark.pid'), 'utf8'));

/** `berth ARGS` as a child process, resolving with its exit code and stderr. */
function berthAsync(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(BERTH_BIN, ['--root', t.root, ...args], { env: berthEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('aardvark-dns', () => {
  it('is started once by concurrent berth processes bringing up the first containers of a network', async () => {
    expect(berth('network', 'create', '--subnet', '10.137.0.0/24', 'o_race').code).toBe(0);
    // Without berth's netavark lock, 6 parallel first setups left 2–3 servers (all but the pid file's orphaned).
    const runs = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => berthAsync('run', '-d', '--name', `r${i}`, '--network', 'o_race', t.img, 'sleep', '300')));
    expect(runs.filter((r) => r.code !== 0)).toEqual([]);
    expect(aardvarks()).toEqual([pidFile()]);
    expect(berth('rm', '-f', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6').code).toBe(0);
    expect(berth('network', 'rm', 'o_race').code).toBe(0);
  }, 120_000);

  it('orphaned (still holding the gateway, answering from stale files) is stopped by network prune, and names resolve again', async () => {
    expect(berth('network', 'create', '--subnet', '10.137.1.0/24', 'o_app').code).toBe(0);
    expect(berth('run', '-d', '--name', 'first', '--network', 'o_app', t.img, 'sleep', '300').code).toBe(0);
    const [orphan] = aardvarks();
    expect(orphan).toBe(pidFile());
    // How an orphan comes about: a second server on the same config dir, which writes the pid file (so
    // netavark signals only it) but cannot bind the gateway's port 53, which the first keeps serving.
    const second = spawn(fs.readlinkSync(`/proc/${orphan}/exe`), ['--config', dnsDir, '-p', '53', 'run'], { stdio: 'ignore', detached: true });
    second.unref();
    for (let i = 0; i < 50 && pidFile() === orphan; i++) await new Promise((r) => setTimeout(r, 50));
    const current = pidFile();
    expect(current).not.toBe(orphan);
    expect(berth('run', '-d', '--name', 'late', '--network', 'o_app', t.img, 'sleep', '300').code).toBe(0);
    // The orphan answers from what it read before `late` existed.
    expect(berth('exec', 'first', 'nslookup', 'late').code).not.toBe(0);

    expect(berth('network', 'prune').code).toBe(0);
    expect(aardvarks()).toEqual([current]);
    // The reload after SIGHUP rebinds asynchronously.
    const looked = berth('exec', 'first', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do nslookup late && exit 0; sleep 0.2; done; exit 1');
    if (looked.code !== 0) console.error(looked, execFileSync('ss', ['-lunp'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('10.137.1.1')));
    expect(looked.stdout).toMatch(/Address: 10\.137\.1\.\d+/);
    expect(berth('rm', '-f', 'first', 'late').code).toBe(0);
  }, 120_000);

  it('of another tool (another config dir) is never touched by the reconciliation', async () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-dnso-other-'));
    const dir = path.join(other, 'aardvark-dns');
    fs.mkdirSync(dir);
    // A server of another tool's config on loopback (aardvark-dns binds each network file's gateway).
    fs.writeFileSync(path.join(dir, 'foreign'), '127.0.0.1\nabc 127.0.0.5  web\n');
    const exe = ['/usr/lib/podman/aardvark-dns', '/usr/libexec/podman/aardvark-dns'].find((f) => fs.existsSync(f))!;
    // `run` daemonizes: the server's pid is in its own pid file once the starter returns.
    execFileSync(exe, ['--config', dir, '-p', String(await freePort()), 'run'], { stdio: 'ignore' });
    const foreign = Number(fs.readFileSync(path.join(dir, 'aardvark.pid'), 'utf8'));
    try {
      expect(berth('network', 'prune').code).toBe(0);
      expect(fs.existsSync(`/proc/${foreign}`)).toBe(true);
    } finally {
      process.kill(foreign, 'SIGKILL');
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
