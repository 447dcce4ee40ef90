// buildSpec against real OCI runtimes: runc from Debian directly, and crun inside a private mount
// namespace with a fresh cgroup2 mount (this host's cgroups are hybrid, which crun refuses; REFERENCE §4).
// The rootfs is Debian's static busybox for amd64 with a passwd/group that define an unprivileged user.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { toLinuxResources } from '../../src/cgroup/resources.js';
import { readCgroupLayout } from '../../src/cgroup/layout.js';
import { hostPaths } from '../../src/host/paths.js';
import { defaultRunOptions, parseDevice, parseTmpfs, parseVolume, type RunOptions } from '../../src/runtime/options.js';
import { buildSpec } from '../../src/runtime/spec/build.js';
import { parseProcLimits, readHostFacts } from '../../src/runtime/spec/host.js';
import { SeccompProfiles } from '../../src/runtime/spec/seccomp.js';
import { NOFILE_HARD } from '../../src/runtime/spec/process.js';
import type { OciSpec } from '../../src/runtime/spec/types.js';
import { busyboxPath } from '../helpers/images/busybox.js';

type Runtime = 'runc' | 'crun';
const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const isRoot = process.getuid?.() === 0;
const runtimes = (['runc', 'crun'] as const).filter((r) => has(r));
const DOCKER_CAPS = '00000000a80425fb';
const hostHardNofile = parseProcLimits(fs.readFileSync('/proc/self/limits', 'utf8')).RLIMIT_NOFILE ?? Infinity;

let tmp: string;
let rootfs: string;
/** The real default profile (podman's, scripts/setup.sh installs it), as the engine uses it. */
const seccomp = new SeccompProfiles({ machine: os.machine(), kernel: os.release() });
let seq = 0;
const created: Array<{ runtime: Runtime; id: string }> = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-spec-run-'));
  rootfs = path.join(tmp, 'rootfs');
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'home/app', 'data', 'srv']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.chownSync(path.join(rootfs, 'home/app'), 1000, 1000);
  const busybox = path.join(rootfs, 'bin/busybox');
  fs.copyFileSync(await busyboxPath('amd64'), busybox);
  fs.chmodSync(busybox, 0o755);
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[a-z0-9_.-]+$/.test(a) && a !== 'busybox');
  for (const a of applets) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\ni2c:x:998:app\napp:x:1000:\n');
});
afterEach(() => {
  for (const { runtime, id } of created.splice(0)) spawnSync(runtime, ['delete', '-f', id], { stdio: 'ignore' });
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

interface Result { code: number | null; stdout: string; stderr: string }

/** Builds the spec, writes the bundle and runs it to completion with stdout/stderr captured. */
async function runContainer(runtime: Runtime, opts: Partial<RunOptions>, script: string, cgroupsEnforced = false): Promise<Result & { spec: OciSpec }> {
  const id = `berth-spec-${process.pid}-${++seq}`;
  const options: RunOptions = { ...defaultRunOptions(id), ...opts };
  const spec = buildSpec({
    id, image: { config: { Env: ['IMAGE_VAR=from-image'], Cmd: ['/bin/sh'] } }, options, rootfs, stateRoot: path.join(tmp, 'state'),
    host: readHostFacts(hostPaths('/')), cgroupsEnforced,
    resources: toLinuxResources(options, { memoryHighBytes: 96 << 20, memoryMaxBytes: 128 << 20, pidsLimit: 256, cpuWeight: 100 }),
    seccomp,
  });
  spec.process.args = ['/bin/sh', '-c', script];
  const bundle = path.join(tmp, id);
  fs.mkdirSync(bundle);
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  created.push({ runtime, id });
  const [cmd, args] = runtime === 'runc'
    ? ['runc', ['run', '--bundle', bundle, id]]
    : ['unshare', ['-m', 'sh', '-c', 'mount -t cgroup2 none /sys/fs/cgroup && exec crun --cgroup-manager=disabled run --bundle "$0" "$1"', bundle, id]];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  });
  return { code, stdout, stderr, spec };
}

/** `key=value` lines printed by a script, as a record. */
const kv = (out: string): Record<string, string> => Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

describe.skipIf(!isRoot || runtimes.length === 0).each(runtimes)('buildSpec under %s', (runtime) => {
  it('propagates the exit code', async () => {
    expect((await runContainer(runtime, {}, 'exit 7')).code).toBe(7);
    const ok = await runContainer(runtime, {}, 'echo hello');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('hello\n');
  });

  it('sets env, cwd, user, hostname and rlimits', async () => {
    const r = await runContainer(runtime, { user: 'app', workdir: '/home/app', env: ['FOO=bar', 'IMAGE_VAR=overridden'], hostname: 'sensor-1' }, [
      'echo uid=$(id -u)', 'echo gid=$(id -g)', 'echo groups=$(id -G)', 'echo cwd=$(pwd)', 'echo foo=$FOO', 'echo image=$IMAGE_VAR',
      'echo home=$HOME', 'echo path=$PATH', 'echo envhost=$HOSTNAME', 'echo hostname=$(hostname)', 'echo nofile=$(ulimit -n)', 'echo nofilehard=$(ulimit -Hn)',
      'echo capeff=$(grep CapEff /proc/self/status | cut -f2)', 'echo capbnd=$(grep CapBnd /proc/self/status | cut -f2)', 'echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)',
    ].join('; '));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(kv(r.stdout)).toEqual({
      uid: '1000', gid: '1000', groups: '1000 998', cwd: '/home/app', foo: 'bar', image: 'overridden', home: '/home/app',
      path: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', envhost: 'sensor-1', hostname: 'sensor-1',
      nofile: '1024', nofilehard: String(Math.min(NOFILE_HARD, hostHardNofile)),
      // A non-root user keeps no capabilities across exec (nothing inheritable or ambient); the bounding set stays Docker's.
      capeff: '0000000000000000', capbnd: DOCKER_CAPS, nnp: '1',
    });
  });

  it("root gets exactly Docker's default capabilities", async () => {
    const r = await runContainer(runtime, {}, 'grep -E "^Cap(Eff|Prm|Bnd|Inh|Amb)" /proc/self/status');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`CapInh:\t0000000000000000\nCapPrm:\t${DOCKER_CAPS}\nCapEff:\t${DOCKER_CAPS}\nCapBnd:\t${DOCKER_CAPS}\nCapAmb:\t0000000000000000\n`);
  });

  it('masks and write-protects /proc and /sys paths', async () => {
    const r = await runContainer(runtime, {}, [
      // /proc/kcore is absent on some kernels; where it exists it must read as nothing.
      'if [ -e /proc/kcore ]; then echo kcore=$(stat -c "%t:%T" /proc/kcore)$(head -c 16 /proc/kcore | wc -c); else echo kcore=absent; fi',
      'echo keys=$(stat -c "%F %t:%T" /proc/keys)', 'echo keysbytes=$(cat /proc/keys | wc -c)', 'echo timer=$(stat -c "%t:%T" /proc/timer_list)',
      'echo firmware=$(ls -A /sys/firmware | wc -l)', 'echo procsys=$(grep " /proc/sys " /proc/mounts | cut -d" " -f4 | cut -d, -f1)',
      'echo sys=$(grep " /sys " /proc/mounts | cut -d" " -f4 | cut -d, -f1)', // Every cgroup hierarchy is read-only (runc's v1 tmpfs holding them may stay writable: harmless, private).
      `echo cgroupfs=$(awk '$2 ~ "^/sys/fs/cgroup" && ($3 == "cgroup" || $3 == "cgroup2") { split($4, o, ","); print o[1] }' /proc/mounts | sort -u)`,
      'echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq=writable || echo sysrq=denied',
    ].join('; '));
    expect(r.code).toBe(0);
    const v = kv(r.stdout);
    expect(['absent', '1:30']).toContain(v.kcore);
    expect(v).toMatchObject({ keys: 'character special file 1:3', keysbytes: '0', timer: '1:3', firmware: '0', procsys: 'ro', sys: 'ro', cgroupfs: 'ro', sysrq: 'denied' });
  });

  it('--read-only root; tmpfs and ro/rw bind mounts', async () => {
    const ro = path.join(tmp, `ro-${runtime}`);
    const rw = path.join(tmp, `rw-${runtime}`);
    fs.mkdirSync(ro);
    fs.mkdirSync(rw);
    fs.writeFileSync(path.join(ro, 'file'), 'host data\n');
    const r = await runContainer(runtime, { readOnly: true, tmpfs: [parseTmpfs('/tmp:size=1m')], volumes: [parseVolume(`${ro}:/data:ro`), parseVolume(`${rw}:/srv`)] }, [
      'touch /newfile 2>/dev/null && echo root=writable || echo root=readonly', 'touch /tmp/x && echo tmp=writable || echo tmp=readonly',
      'echo data=$(cat /data/file)', 'touch /data/new 2>/dev/null && echo bindro=writable || echo bindro=readonly', 'echo written > /srv/out && echo bindrw=writable',
      'echo shm=$(grep " /dev/shm " /proc/mounts | grep -o "size=[0-9a-z]*")',
    ].join('; '));
    expect(r.code).toBe(0);
    expect(kv(r.stdout)).toEqual({ root: 'readonly', tmp: 'writable', data: 'host data', bindro: 'readonly', bindrw: 'writable', shm: 'size=65536k' });
    expect(fs.readFileSync(path.join(rw, 'out'), 'utf8')).toBe('written\n');
    expect(fs.existsSync(path.join(ro, 'new'))).toBe(false);
  });

  it('passes devices with their permissions; /dev/null works', async () => {
    // /dev/zero stands in for an I2C bus: present under the asked name, with its numbers, and readable.
    // /dev/fuse (10:229, not on the default allow list) passed read-only, /dev/loop-control (10:237) not passed.
    const r = await runContainer(runtime, { devices: [parseDevice('/dev/zero:/dev/i2c-1:rw'), parseDevice('/dev/fuse:/dev/fuse-r:r')] }, [
      'echo hi > /dev/null && echo null=ok', 'echo i2c=$(stat -c "%F %t:%T" /dev/i2c-1)', 'echo read=$(head -c 4 /dev/i2c-1 | wc -c)',
      'echo fuse=$(stat -c "%t:%T %a" /dev/fuse-r)',
      '(exec 3</dev/fuse-r) 2>/dev/null && echo fuseread=ok || echo fuseread=denied',
      '(exec 3>/dev/fuse-r) 2>/dev/null && echo fusewrite=ok || echo fusewrite=denied',
      'mknod /dev/lc c 10 237 && { (exec 3</dev/lc) 2>/dev/null && echo unpassed=ok || echo unpassed=denied; }',
    ].join('; '));
    expect(r.code).toBe(0);
    const v = kv(r.stdout);
    expect(v).toMatchObject({ null: 'ok', i2c: 'character special file 1:5', read: '4', fuse: `a:e5 ${(fs.statSync('/dev/fuse').mode & 0o777).toString(8)}`, fuseread: 'ok' });
    // runc enforces the device cgroup through the v1 devices controller; crun runs with
    // --cgroup-manager=disabled on this hybrid host, so nothing denies there (REFERENCE §4).
    const enforced = runtime === 'runc';
    expect(v.fusewrite).toBe(enforced ? 'denied' : 'ok');
    expect(v.unpassed).toBe(enforced ? 'denied' : 'ok');
  });

  it('private network: only lo; host network: the host interfaces', async () => {
    const priv = await runContainer(runtime, {}, 'ls /sys/class/net');
    expect(priv.code).toBe(0);
    expect(priv.stdout.trim().split(/\s+/)).toEqual(['lo']);
    const host = await runContainer(runtime, { network: 'host' }, 'ls /sys/class/net');
    expect(host.code).toBe(0);
    expect(host.stdout.trim().split(/\s+/).sort()).toEqual(fs.readdirSync('/sys/class/net').sort());
  });

  it.runIf(runtime === 'runc' && readCgroupLayout(hostPaths('/')).mode === 'hybrid')('why cgroupsEnforced must be false on a hybrid host: runc refuses the unified map', async () => {
    const r = await runContainer(runtime, { memory: 64 << 20 }, 'true', true);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/cannot use unified on cgroup v1/);
  });
});
