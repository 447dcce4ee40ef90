// issue 19: berth cp both ways as tar streams, against a running busybox container and a stopped one; no path or symlink
// in the container (nor in a tar given to it) reaches the host.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BERTH_BIN } from '../helpers/dist.js';
import { SERVICE, until, VerbsEnv } from '../helpers/verbs-env.js';

const env = new VerbsEnv('cp/busybox');
const berth = (...args: string[]) => env.berth(...args);
let host: string;

beforeAll(() => {
  host = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cp-host-'));
  expect(berth('run', '-d', '--name', 'box', env.img, ...SERVICE).code).toBe(0);
  expect(berth('exec', 'box', 'sh', '-c', 'mkdir -p /data/sub && echo one > /data/one && echo two > /data/sub/two && chown 1234:4321 /data/one && ln -s one /data/link').code).toBe(0);
});
afterAll(() => fs.rmSync(host, { recursive: true, force: true }));

async function tarEntries(bytes: Buffer): Promise<Array<{ name: string; type: string; uid: number; body: string }>> {
  const out: Array<{ name: string; type: string; uid: number; body: string }> = [];
  const ex = tar.extract();
  const done = (async () => {
    for await (const e of ex) {
      let body = '';
      for await (const c of e) body += String(c);
      out.push({ name: e.header.name, type: e.header.type ?? '', uid: e.header.uid ?? 0, body });
    }
  })();
  ex.end(bytes);
  await done;
  return out;
}

async function makeTar(entries: Array<{ name: string; type?: 'file' | 'symlink' | 'directory'; linkname?: string; body?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', ...(e.linkname && { linkname: e.linkname }) }, e.body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('berth cp out of a container', () => {
  it('copies a file to a new host path and a directory into an existing one, owners kept only with -a', () => {
    expect(berth('cp', 'box:/data/one', path.join(host, 'copied')).code).toBe(0);
    expect(fs.readFileSync(path.join(host, 'copied'), 'utf8')).toBe('one\n');
    expect(fs.statSync(path.join(host, 'copied')).uid).toBe(process.getuid!());
    expect(berth('cp', '-a', 'box:/data', host).code).toBe(0);
    expect(fs.readFileSync(path.join(host, 'data/sub/two'), 'utf8')).toBe('two\n');
    expect(fs.statSync(path.join(host, 'data/one')).uid).toBe(1234);
    expect(fs.readlinkSync(path.join(host, 'data/link'))).toBe('one');
  });

  it('writes a tar stream to stdout with -', async () => {
    const r = env.berthBytes('cp', 'box:/data/sub', '-');
    expect(r.code).toBe(0);
    expect((await tarEntries(r.stdout)).map((e) => [e.name, e.body])).toEqual([['sub/', ''], ['sub/two', 'two\n']]);
  });

  it('resolves symlinks inside the container: a link to a host path finds the container\'s, not the host\'s', () => {
    const secret = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cp-secret-'));
    fs.writeFileSync(path.join(secret, 'key'), 'host secret');
    try {
      expect(berth('exec', 'box', 'sh', '-c', `ln -s ${secret} /leak`).code).toBe(0);
      expect(berth('cp', 'box:/leak/key', path.join(host, 'stolen'))).toMatchObject({ code: 4, stderr: expect.stringContaining('no such file or directory') });
      expect(fs.existsSync(path.join(host, 'stolen'))).toBe(false);
    } finally {
      fs.rmSync(secret, { recursive: true, force: true });
    }
  });
});

describe('berth cp into a container', () => {
  it('copies a file in as the container\'s root, or with its owner under -a; a directory into a directory', () => {
    const f = path.join(host, 'in.txt');
    fs.writeFileSync(f, 'into the box\n');
    fs.chownSync(f, 2222, 3333);
    expect(berth('cp', f, 'box:/tmp/in.txt').code).toBe(0);
    expect(berth('exec', 'box', 'sh', '-c', 'cat /tmp/in.txt; stat -c %u:%g /tmp/in.txt').stdout).toBe('into the box\n0:0\n');
    expect(berth('cp', '-a', f, 'box:/tmp/').code).toBe(0);
    expect(berth('exec', 'box', 'sh', '-c', 'stat -c %u:%g /tmp/in.txt').stdout).toBe('2222:3333\n');
    expect(berth('cp', path.join(host, 'data'), 'box:/tmp').code).toBe(0);
    expect(berth('exec', 'box', 'cat', '/tmp/data/sub/two').stdout).toBe('two\n');
  });

  it('extracts a tar from stdin with -, and refuses one that writes through a symlink', async () => {
    expect(env.berthIn(await makeTar([{ name: 'a/b.txt', body: 'from tar' }]), 'cp', '-', 'box:/tmp').code).toBe(0);
    expect(berth('exec', 'box', 'cat', '/tmp/a/b.txt').stdout).toBe('from tar');
    const target = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cp-target-'));
    try {
      const hostile = await makeTar([{ name: 'esc', type: 'symlink', linkname: target }, { name: 'esc/pwned', body: 'x' }]);
      const r = env.berthIn(hostile, 'cp', '-', 'box:/tmp');
      expect(r).toMatchObject({ code: 3, stderr: expect.stringContaining('symlink') });
      expect(fs.readdirSync(target)).toEqual([]);
      // A symlink in the container to a host directory is the container's directory of that name.
      expect(berth('exec', 'box', 'sh', '-c', `ln -s ${target} /into`).code).toBe(0);
      expect(berth('cp', path.join(host, 'in.txt'), 'box:/into/')).toMatchObject({ code: 4 });
      expect(fs.readdirSync(target)).toEqual([]);
    } finally {
      fs.rmSync(target, { recursive: true, force: true });
    }
  });

  it('needs exactly one container side', () => {
    expect(berth('cp', '/etc/hostname', '/tmp/x')).toMatchObject({ code: 2 });
  });
});

describe('berth cp with a container that is not running', () => {
  it('writes its root and volumes as the container then sees them, reads them after the exit, keeps :ro read-only and leaves no mount', () => {
    const ro = path.join(host, 'robind');
    fs.mkdirSync(ro);
    fs.writeFileSync(path.join(host, 'in.txt'), 'copied in\n');
    expect(berth('create', '--name', 'idle', '-v', 'cpvol:/vol', '-v', `${ro}:/ro:ro`, env.img, 'sh', '-c', 'cat /tmp/in.txt /vol/in.txt; echo made > /vol/out').code).toBe(0);
    expect(berth('cp', path.join(host, 'in.txt'), 'idle:/tmp/')).toMatchObject({ code: 0 });
    expect(berth('cp', path.join(host, 'in.txt'), 'idle:/vol/')).toMatchObject({ code: 0 });
    expect(berth('cp', path.join(host, 'in.txt'), 'idle:/ro/').code).not.toBe(0);
    expect(fs.readdirSync(ro)).toEqual([]);
    expect(berth('start', 'idle').code).toBe(0);
    expect(berth('wait', 'idle').stdout.trim()).toBe('0');
    expect(berth('logs', 'idle').stdout).toBe('copied in\ncopied in\n');
    // After the exit: what the container wrote into its volume, and into its own root.
    expect(berth('cp', 'idle:/vol/out', path.join(host, 'out')).code).toBe(0);
    expect(fs.readFileSync(path.join(host, 'out'), 'utf8')).toBe('made\n');
    expect(berth('cp', 'idle:/tmp/in.txt', path.join(host, 'back.txt')).code).toBe(0);
    expect(fs.readFileSync(path.join(host, 'back.txt'), 'utf8')).toBe('copied in\n');
    // (the running `box` has its root mounted: only cp's own mounts must be gone)
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(new RegExp(`${env.root}/containers/[0-9a-f]+/cp-`));
    for (const d of fs.readdirSync(path.join(env.root, 'containers'))) expect(fs.readdirSync(path.join(env.root, 'containers', d)).filter((f) => f.startsWith('cp-'))).toEqual([]);
  });

  it('refuses to start the container while a cp has its stopped root mounted; what a killed cp left is cleared by the next start', async () => {
    expect(berth('create', '--name', 'guarded', env.img, 'sh', '-c', 'cat /tmp/held.txt').code).toBe(0);
    const id = (JSON.parse(berth('inspect', 'guarded').stdout) as Array<{ Id: string }>)[0]!.Id;
    const dir = path.join(env.root, 'containers', id);
    const copyIn = () => spawn(BERTH_BIN, ['--root', env.root, 'cp', '-', 'guarded:/tmp/'], { env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' }, stdio: ['pipe', 'ignore', 'pipe'] });
    const mounted = () => fs.readdirSync(dir).some((f) => f.startsWith('cp-'));
    // A cp reading its tar from a stdin that has not ended yet: the stopped root stays mounted meanwhile.
    const cp = copyIn();
    const exited = new Promise<number | null>((resolve) => cp.once('close', resolve));
    await until(mounted, 20_000);
    const refused = berth('start', 'guarded');
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(new RegExp(`container guarded cannot start while berth cp \\(process ${cp.pid}\\) has its stopped root mounted`));
    cp.stdin.end(await makeTar([{ name: 'held.txt', body: 'held\n' }]));
    expect(await exited).toBe(0);
    expect(berth('start', 'guarded').code).toBe(0);
    expect(berth('wait', 'guarded').stdout.trim()).toBe('0');
    expect(berth('logs', 'guarded').stdout).toBe('held\n');
    // kill -9 while mounted: nothing unmounts, but the process is gone; the start detaches and removes it.
    const killed = copyIn();
    const gone = new Promise((resolve) => killed.once('close', resolve));
    await until(mounted, 20_000);
    killed.kill('SIGKILL');
    await gone;
    expect(berth('start', 'guarded').code).toBe(0);
    expect(berth('wait', 'guarded').stdout.trim()).toBe('0');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('cp-'))).toEqual([]);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(new RegExp(`${dir}/cp-`));
  });
});
