// berth-monitor (native/monitor.c) against the real runc and crun: root, real namespaces, busybox
// bundles. Each test starts one monitor the way berth does (spawned, sync fd 3) and reads what it
// leaves in the state dir: monitor.pid, container.log (CRI), exit.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle } from '../helpers/bundle.js';
import { REPO } from '../helpers/dist.js';
import { freePort } from '../helpers/services/ports.js';

const MONITOR = path.join(REPO, 'native/build/berth-monitor');
const PURE_V2 = /^\S+ \/sys\/fs\/cgroup cgroup2 /m.test(fs.readFileSync('/proc/self/mounts', 'utf8'));

interface Runtime {
  name: string;
  path: string;
  /** Global args before the command (also used for delete/kill/state). */
  args: string[];
  monitorArgs: string[];
}

function which(cmd: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} is not installed: run \`bash scripts/setup.sh\``);
  return r.stdout.trim();
}

const RUNTIMES: Runtime[] = [
  { name: 'runc', path: 'runc', args: [], monitorArgs: [] },
  // crun refuses hybrid cgroup hosts; the monitor gives it a private, pure cgroup2 /sys/fs/cgroup.
  { name: 'crun', path: 'crun', args: ['--cgroup-manager=disabled'], monitorArgs: PURE_V2 ? [] : ['--private-cgroup2'] },
];

const CRI_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$/;
interface Rec { stream: string; tag: string; text: string }
function parseLog(file: string): Rec[] {
  const text = fs.readFileSync(file, 'utf8');
  expect(text.endsWith('\n') || text === '').toBe(true);
  return text.split('\n').slice(0, -1).map((line) => {
    const m = CRI_LINE.exec(line);
    if (!m) throw new Error(`not a CRI log line: ${JSON.stringify(line.slice(0, 80))}`);
    return { stream: m[2]!, tag: m[3]!, text: m[4]! };
  });
}

function procStat(pid: number): string[] | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return ['', '', ...s.slice(s.lastIndexOf(')') + 2).trim().split(' ')]; // index = field number - 1
  } catch {
    return undefined;
  }
}
const alive = (pid: number): boolean => {
  const st = procStat(pid);
  return st !== undefined && st[2] !== 'Z';
};

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** First line written on the stream (the sync fd), or what was there at EOF. */
function firstLine(stream: Readable, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no sync message after ${timeoutMs} ms (got ${JSON.stringify(buf)})`)), timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      stream.destroy();
      resolve(buf.split('\n')[0]!);
    };
    stream.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) done();
    });
    stream.on('end', done);
    stream.on('error', reject);
  });
}

interface Started {
  state: string;
  sync: { pid?: number; error?: string };
  syncMs: number;
  monitorPid: number;
  spawner: ChildProcess;
}

let seq = 0;
const cleanups: (() => void | Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function bundle(args: string[]): Promise<string> {
  const b = await makeBundle(args);
  cleanups.push(b.cleanup);
  return b.dir;
}

function monitorPidOf(state: string): { pid: number; startTime: number } {
  return JSON.parse(fs.readFileSync(path.join(state, 'monitor.pid'), 'utf8')) as { pid: number; startTime: number };
}

function readExit(state: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(state, 'exit'), 'utf8')) as Record<string, unknown>;
}

describe.each(RUNTIMES)('berth-monitor with $name', (rt) => {
  let rtPath = '';
  const runtime = (...args: string[]) => spawnSync(rtPath, [...rt.args, ...args], { encoding: 'utf8' });

  beforeAll(() => {
    expect(process.getuid?.()).toBe(0);
    rtPath = which(rt.path);
    const make = spawnSync('make', ['-C', path.join(REPO, 'native')], { encoding: 'utf8' });
    if (make.status !== 0) throw new Error(`make -C native failed:\n${make.stdout}${make.stderr}`);
  });

  /** Starts a monitor for a new container; `wrap` spawns it through a shell in its own process group. */
  async function start(bundleDir: string, extra: string[] = [], wrap = false): Promise<Started & { id: string }> {
    const id = `bm-${process.pid}-${++seq}-${rt.name}`;
    const state = tempDir('berth-mon-');
    const errFd = fs.openSync(path.join(state, 'monitor.stderr'), 'w');
    const args = ['--id', id, '--bundle', bundleDir, '--state-dir', state, '--runtime', rtPath,
      ...rt.args.map((a) => `--runtime-arg=${a}`), ...rt.monitorArgs, '--sync-fd', '3', ...extra];
    const t0 = Date.now();
    const spawner = wrap
      ? spawn('sh', ['-c', '"$@"; exec sleep 60', 'sh', MONITOR, ...args], { detached: true, stdio: ['ignore', 'ignore', errFd, 'pipe'] })
      : spawn(MONITOR, args, { stdio: ['ignore', 'ignore', errFd, 'pipe'] });
    fs.closeSync(errFd);
    cleanups.push(() => {
      runtime('delete', '-f', id);
      try {
        const { pid } = monitorPidOf(state);
        if (alive(pid)) process.kill(pid, 'SIGKILL');
      } catch { /* never started */ }
      if (wrap && spawner.exitCode === null && spawner.signalCode === null) process.kill(-spawner.pid!, 'SIGKILL');
    });
    const line = await firstLine(spawner.stdio[3] as Readable);
    const syncMs = Date.now() - t0;
    let sync: Started['sync'];
    try {
      sync = JSON.parse(line) as Started['sync'];
    } catch {
      throw new Error(`bad sync line ${JSON.stringify(line)}; monitor stderr: ${fs.readFileSync(path.join(state, 'monitor.stderr'), 'utf8')}`);
    }
    return { id, state, sync, syncMs, monitorPid: monitorPidOf(state).pid, spawner };
  }

  async function finished(s: Started, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    await waitFor('the exit file', () => fs.existsSync(path.join(s.state, 'exit')), timeoutMs);
    await waitFor('the monitor to exit', () => !alive(s.monitorPid));
    return readExit(s.state);
  }

  it('logs stdout and stderr lines with their stream tags and records exit code 3', async () => {
    const s = await start(await bundle(['sh', '-c', 'echo out1; echo err1 >&2; echo out2; printf tail; exit 3']));
    expect(s.sync).toEqual({ pid: expect.any(Number) });
    const exit = await finished(s);
    expect(exit).toMatchObject({ exitCode: 3, signal: null, oomKilled: false, oomSource: 'none' });
    expect(Date.parse(exit.finishedAt as string)).toBeGreaterThanOrEqual(Date.parse(exit.startedAt as string));
    const recs = parseLog(path.join(s.state, 'container.log'));
    expect(recs.filter((r) => r.stream === 'stdout')).toEqual([
      { stream: 'stdout', tag: 'F', text: 'out1' },
      { stream: 'stdout', tag: 'F', text: 'out2' },
      { stream: 'stdout', tag: 'P', text: 'tail' }, // output ended without a newline
    ]);
    expect(recs.filter((r) => r.stream === 'stderr')).toEqual([{ stream: 'stderr', tag: 'F', text: 'err1' }]);
    expect(fs.readFileSync(path.join(s.state, 'monitor.stderr'), 'utf8')).toBe('');
  });

  it('reports the real pid, a child of the monitor; ignores SIGTERM; kill -9 records 137 / signal 9', async () => {
    const s = await start(await bundle(['sleep', '60']));
    const pid = s.sync.pid!;
    // `start` returns once the runtime released the init; its execve may still be a moment away
    await waitFor('the init to exec sleep', () => fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep', 2_000);
    // The init is the runtime's child until the runtime (and, for crun on a hybrid host, its unshare
    // wrapper) exits; then the monitor, a subreaper, adopts it. Under load that can come after the exec.
    await waitFor('the monitor to adopt the init', () => Number(procStat(pid)![4 - 1]) === s.monitorPid, 2_000);
    expect(Number(procStat(pid)![4 - 1])).toBe(s.monitorPid);
    // monitor.pid: pid + start time (field 22), so berth can tell a reused pid
    expect(monitorPidOf(s.state).startTime).toBe(Number(procStat(s.monitorPid)![22 - 1]));
    const status = fs.readFileSync(`/proc/${s.monitorPid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
    console.log(`[monitor ${rt.name}] VmRSS ${kb('VmRSS')} kB, VmHWM ${kb('VmHWM')} kB, start→sync ${s.syncMs} ms`);
    expect(kb('VmHWM')).toBeLessThan(8 * 1024);

    process.kill(s.monitorPid, 'SIGTERM');
    await sleep(200);
    expect(alive(s.monitorPid)).toBe(true);
    expect(alive(pid)).toBe(true);

    process.kill(pid, 'SIGKILL');
    expect(await finished(s)).toMatchObject({ exitCode: 137, signal: 9, oomKilled: false });
  });

  it('splits lines longer than 16 KiB into P records', async () => {
    const s = await start(await bundle(['sh', '-c', 'head -c 40000 /dev/zero | tr "\\0" a; echo; echo after']));
    expect(await finished(s)).toMatchObject({ exitCode: 0 });
    const recs = parseLog(path.join(s.state, 'container.log'));
    expect(recs.map((r) => [r.tag, r.text.length])).toEqual([['P', 16384], ['P', 16384], ['F', 40000 - 2 * 16384], ['F', 5]]);
    expect(recs.map((r) => r.text).join('')).toBe(`${'a'.repeat(40000)}after`);
  });

  it('keeps a chatty container within log-max-bytes × log-max-files', async () => {
    const line = '0123456789'.repeat(10);
    const maxBytes = 256 * 1024;
    const s = await start(await bundle(['sh', '-c', `yes ${line} | head -n 50000; echo done`]), ['--log-max-bytes', String(maxBytes), '--log-max-files', '3']);
    expect(await finished(s, 30_000)).toMatchObject({ exitCode: 0 });
    const files = fs.readdirSync(s.state).filter((f) => f.startsWith('container.log')).sort();
    expect(files).toEqual(['container.log', 'container.log.1', 'container.log.2']);
    let total = 0;
    for (const f of files) {
      const size = fs.statSync(path.join(s.state, f)).size;
      expect(size).toBeLessThanOrEqual(maxBytes);
      total += size;
      for (const r of parseLog(path.join(s.state, f))) expect(r.text === line || r.text === 'done').toBe(true); // no torn records
    }
    expect(total).toBeGreaterThan(maxBytes * 2); // the older files were full when rotated
    expect(parseLog(path.join(s.state, 'container.log')).at(-1)).toEqual({ stream: 'stdout', tag: 'F', text: 'done' });
  });

  it('--proxy forwards while the container runs, refuses a taken port up front, and frees it before the exit record', async () => {
    // The target: an echo server of the test's on the host's 127.0.0.1 (the monitor connects from the host namespace).
    const echo = net.createServer((c) => c.pipe(c));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    cleanups.push(() => void echo.close());
    const port = await freePort('::1');
    const proxy = ['--proxy', `tcp,::1,${port},127.0.0.1,${(echo.address() as net.AddressInfo).port},1`];
    const s = await start(await bundle(['sleep', '60']), proxy);
    expect(s.sync.pid).toBeGreaterThan(0);
    const reply = await new Promise<string>((resolve, reject) => {
      let got = '';
      const c = net.connect({ host: '::1', port }, () => c.end('through the proxy\n'));
      c.on('data', (d: Buffer) => (got += d.toString())).on('end', () => resolve(got)).on('error', reject);
    });
    expect(reply).toBe('through the proxy\n');

    const taken = await start(await bundle(['sleep', '60']), proxy);
    expect(taken.sync.error).toBe(`cannot listen on [::1]:${port}/tcp: Address already in use`);
    expect(runtime('state', taken.id).status).not.toBe(0); // nothing was started

    expect(runtime('kill', s.id, 'KILL').status).toBe(0);
    await waitFor('the exit file', () => fs.existsSync(path.join(s.state, 'exit')));
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer().once('error', () => resolve(false));
      srv.listen({ host: '::1', port, ipv6Only: true }, () => srv.close(() => resolve(true)));
    });
    expect(free).toBe(true);
  });

  it('a bad bundle reports {"error"} with the runtime message, quickly, and the monitor exits', async () => {
    const dir = tempDir('berth-badbundle-');
    fs.writeFileSync(path.join(dir, 'config.json'), 'garbage');
    const s = await start(dir);
    expect(s.sync.error).toMatch(/^runtime run failed \(exit status 1\): .+/);
    expect(s.syncMs).toBeLessThan(5_000);
    await waitFor('the monitor to exit', () => !alive(s.monitorPid));
    expect(fs.existsSync(path.join(s.state, 'exit'))).toBe(false);
  });

  it('a missing executable reports {"error"} and leaves no container process', async () => {
    const s = await start(await bundle(['/bin/no-such-program']));
    expect(s.sync.error).toMatch(/runtime run failed.*no-such-program/s);
    await waitFor('the monitor to exit', () => !alive(s.monitorPid));
    const st = runtime('state', s.id);
    if (st.status === 0) expect((JSON.parse(st.stdout) as { status: string }).status).toBe('stopped');
  });

  it('outlives the process (group) that spawned it, and is stopped through the runtime', async () => {
    const s = await start(await bundle(['sleep', '60']), [], true);
    const pid = s.sync.pid!;
    expect(Number(procStat(s.monitorPid)![6 - 1])).not.toBe(s.spawner.pid); // its own session
    process.kill(-s.spawner.pid!, 'SIGKILL'); // berth's side dies, with its whole process group
    await waitFor('the spawner to die', () => s.spawner.exitCode !== null || s.spawner.signalCode !== null);
    await sleep(100);
    expect(alive(s.monitorPid)).toBe(true);
    expect(alive(pid)).toBe(true);
    expect(runtime('kill', s.id, 'KILL').status).toBe(0);
    expect(await finished(s)).toMatchObject({ exitCode: 137, signal: 9 });
  });

  /** A bundle whose rootfs is an empty mount point over `lower` (the busybox tree), as berth lays it out. */
  async function overlayBundle(args: string[]): Promise<{ dir: string; options: string }> {
    const dir = (await makeBundle(args, { edit: (c) => void (c.root.readonly = false) })).dir;
    cleanups.push(() => {
      spawnSync('umount', ['-l', path.join(dir, 'rootfs')]);
      fs.rmSync(dir, { recursive: true, force: true });
    });
    fs.renameSync(path.join(dir, 'rootfs'), path.join(dir, 'lower'));
    for (const d of ['rootfs', 'upper', 'work']) fs.mkdirSync(path.join(dir, d));
    return { dir, options: `lowerdir=${dir}/lower,upperdir=${dir}/upper,workdir=${dir}/work` };
  }
  const mounted = (p: string): boolean => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);

  it('--mount-overlay mounts the root before the runtime runs; --cleanup deletes the runtime state and unmounts it before the exit record', async () => {
    const b = await overlayBundle(['sh', '-c', 'echo written > /hello']);
    const s = await start(b.dir, ['--mount-overlay', b.options, '--cleanup', '--no-fsync-exit']); // as `berth run --rm`
    expect(s.sync).toEqual({ pid: expect.any(Number) });
    const exit = await finished(s);
    expect(exit).toMatchObject({ exitCode: 0, cleaned: true });
    expect(mounted(path.join(b.dir, 'rootfs'))).toBe(false);
    expect(fs.readFileSync(path.join(b.dir, 'upper/hello'), 'utf8')).toBe('written\n'); // the write went to the upper dir
    expect(runtime('state', s.id).status).not.toBe(0); // gone from the runtime
    expect(fs.readFileSync(path.join(s.state, 'monitor.stderr'), 'utf8')).toBe('');
  });

  it('without --cleanup the runtime state stays and the exit record says so', async () => {
    const s = await start(await bundle(['true']));
    expect(await finished(s)).toMatchObject({ exitCode: 0, cleaned: false });
    expect(runtime('state', s.id).status).toBe(0);
  });

  it('a failed start unmounts the root it mounted', async () => {
    const b = await overlayBundle(['/bin/no-such-program']);
    const s = await start(b.dir, ['--mount-overlay', b.options, '--cleanup']);
    expect(s.sync.error).toMatch(/runtime run failed.*no-such-program/s);
    await waitFor('the monitor to exit', () => !alive(s.monitorPid));
    expect(mounted(path.join(b.dir, 'rootfs'))).toBe(false);
  });

  it('a bad overlay is a clear error with the errno, before the runtime runs', async () => {
    const b = await overlayBundle(['true']);
    const s = await start(b.dir, ['--mount-overlay', `lowerdir=${b.dir}/missing`]);
    expect(s.sync.error).toMatch(/^cannot mount the container root at .*\/rootfs: No such file or directory$/);
  });

  it('counts OOM kills from memory.events in --cgroup-dir', async () => {
    const cg = tempDir('berth-fakecg-');
    const events = (n: number) => fs.writeFileSync(path.join(cg, 'memory.events'), `low 0\nhigh 0\nmax 3\noom ${n}\noom_kill ${n}\n`);
    events(0);
    const s = await start(await bundle(['sleep', '60']), ['--cgroup-dir', cg]);
    events(1);
    process.kill(s.sync.pid!, 'SIGKILL');
    expect(await finished(s)).toMatchObject({ exitCode: 137, signal: 9, oomKilled: true, oomSource: 'memory.events' });
  });

  it('counts OOM kills in a --cgroup-dir that the runtime creates (absent before the start) from 0', async () => {
    const cg = path.join(tempDir('berth-fakecg-'), 'ctr');
    const s = await start(await bundle(['sleep', '60']), ['--cgroup-dir', cg]);
    fs.mkdirSync(cg);
    fs.writeFileSync(path.join(cg, 'memory.events'), 'low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n');
    process.kill(s.sync.pid!, 'SIGKILL');
    expect(await finished(s)).toMatchObject({ exitCode: 137, oomKilled: true, oomSource: 'memory.events' });
  });
});

describe('berth-monitor without a working runtime', () => {
  it('a malformed --proxy is refused before anything starts', async () => {
    const dir = tempDir('berth-badproxy-');
    const child = spawn(MONITOR, ['--id', 'bp', '--bundle', dir, '--state-dir', dir, '--runtime', '/bin/false', '--sync-fd', '3',
      '--proxy', 'sctp,::1,80,::1,80,1'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    expect(JSON.parse(await firstLine(child.stdio[3] as Readable))).toEqual({ error: '--proxy sctp,::1,80,::1,80,1: expected tcp|udp,LISTEN-IP,LISTEN-PORT,TARGET-IP,TARGET-PORT,COUNT' });
  });

  it('a runtime that hangs is killed after --runtime-timeout and reported', async () => {
    execFileSync('make', ['-C', path.join(REPO, 'native')]);
    const dir = tempDir('berth-hang-');
    const fake = path.join(dir, 'hang-runtime');
    fs.writeFileSync(fake, '#!/bin/sh\necho "stuck in $*" >&2\nexec sleep 30\n', { mode: 0o755 });
    fs.mkdirSync(path.join(dir, 'state'));
    const t0 = Date.now();
    const child = spawn(MONITOR, ['--id', 'hang', '--bundle', dir, '--state-dir', path.join(dir, 'state'), '--runtime', fake,
      '--runtime-timeout', '300', '--sync-fd', '3'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    const sync = JSON.parse(await firstLine(child.stdio[3] as Readable)) as { error: string };
    expect(sync.error).toBe('runtime run timed out after 300 ms');
    expect(Date.now() - t0).toBeLessThan(3_000);
    const { pid } = monitorPidOf(path.join(dir, 'state'));
    await waitFor('the monitor to exit', () => !alive(pid));
  });
});
