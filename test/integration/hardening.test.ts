// Issue 18's probes of a hostile container, each run in a real container under crun and under runc
// (this host's cgroups are hybrid: runc enforces device rules through the v1 devices controller, crun
// through the devices cgroup berth prepares for it) and asserted denied; where Docker allows it back
// (seccomp=unconfined, --privileged), asserted allowed. The syscall probes are a static C program
// (test/helpers/probes/syscall-probe.c) built here and bind-mounted into the containers.
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectBoard } from '../../src/board/index.js';
import { hostPaths } from '../../src/host/paths.js';
import { BerthRoot } from '../../src/root.js';
import { defaultRunOptions } from '../../src/runtime/options.js';
import { BERTH_BIN, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { netTestEnv } from '../helpers/net/test-env.js';

const has = (exe: string): boolean => spawnSync('sh', ['-c', `command -v ${exe}`]).status === 0;
const runtimes = (['crun', 'runc'] as const).filter(has);
const PROBE_SRC = path.resolve(import.meta.dirname, '../helpers/probes/syscall-probe.c');
const PROFILE = '/usr/share/containers/seccomp.json';
const EPERM = 'errno=1';
const hostAppArmor = fs.existsSync('/sys/module/apparmor/parameters/enabled') && fs.readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';

let registry: RegistryInstance;
let root: string;
let img: string;
let probeDir: string;
/** Host mounts this file made (tracefs, a tmpfs under a volume source), undone at the end. */
const hostMounts: string[] = [];

beforeAll(async () => {
  requireBuilt();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-harden-'));
  probeDir = path.join(root, 'probe');
  fs.mkdirSync(probeDir);
  execFileSync('gcc', ['-static', '-O2', '-Wall', '-o', path.join(probeDir, 'syscall-probe'), PROBE_SRC]);
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'harden/busybox', 'v1');
  img = `${registry.host}/harden/busybox:v1`;
  expect(berth('', 'pull', '-q', img).code).toBe(0);
});
afterAll(async () => {
  const left = JSON.parse(berth('', 'ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('', 'rm', '-f', ...left.map((c) => c.name));
  for (const m of hostMounts.reverse()) spawnSync('umount', [m]);
  await registry?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

function berth(runtime: string, ...args: string[]) {
  const r = spawnSync(BERTH_BIN, ['--root', path.join(root, 'state'), ...args], { encoding: 'utf8', env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: runtime } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
/** The probe binary on the host, for what the kernel itself allows and for host root's keyring. */
const hostProbe = (...args: string[]): string => spawnSync(path.join(probeDir, 'syscall-probe'), args, { encoding: 'utf8' }).stdout.trim();
/** `NAME ok N` / `NAME errno=N` lines → NAME → the rest. */
const results = (out: string): Record<string, string> => Object.fromEntries(out.trim().split('\n').filter((l) => /^[a-z-_]+ (ok|errno)/.test(l)).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));
const inspect = (runtime: string, name: string) => (JSON.parse(berth(runtime, 'inspect', name).stdout) as Array<Record<string, any>>)[0]!;

const SYSCALL_PROBES = ['unshare-user', 'clone-newuser', 'userfaultfd', 'perf_event_open', 'io_uring_setup', 'personality-rie', 'keyctl-user-keyring'];

describe.each(runtimes)('a hostile container under %s', (runtime) => {
  const run = (...args: string[]) => berth(runtime, 'run', '--rm', '-v', `${probeDir}:/probe:ro`, ...args);
  const probes = (names: readonly string[]) => names.map((p) => `/probe/syscall-probe ${p}`).join('; ');

  it('the default filter refuses what Docker refuses; seccomp=unconfined gives back what the kernel allows', () => {
    const filtered = run(img, 'sh', '-c', `${probes(SYSCALL_PROBES)}; /probe/syscall-probe seccomp-mode`);
    expect(filtered.stderr).toBe('');
    const denied = results(filtered.stdout);
    expect(denied['seccomp-mode']).toBe('ok 2'); // SECCOMP_MODE_FILTER
    for (const p of SYSCALL_PROBES) expect(denied[p], p).toMatch(/^errno=(1|38)$/);
    expect(denied['keyctl-user-keyring']).toBe(EPERM);
    expect(denied['unshare-user']).toBe(EPERM);

    const open = results(run('--security-opt', 'seccomp=unconfined', img, 'sh', '-c', `${probes(SYSCALL_PROBES)}; /probe/syscall-probe seccomp-mode`).stdout);
    expect(open['seccomp-mode']).toBe('ok 0');
    // What the host's kernel refuses root outright (a sysctl) is no seccomp matter: compare only the rest.
    const kernelAllows = SYSCALL_PROBES.filter((p) => hostProbe(p).startsWith(`${p} ok`));
    expect(kernelAllows).toContain('unshare-user');
    for (const p of kernelAllows) expect(open[p], p).toMatch(/^ok/);
  });

  it("cannot find host root's keys nor leave one in its keyring", () => {
    const desc = `berth-host-${crypto.randomBytes(4).toString('hex')}`;
    const added = /ok (\d+)/.exec(hostProbe('add-key', desc))?.[1];
    expect(added).toBeDefined();
    try {
      const mine = `berth-container-${crypto.randomBytes(4).toString('hex')}`;
      const r = results(run(img, 'sh', '-c', `${probes([`keyctl-search ${desc}`, `add-key ${mine}`])}`).stdout);
      expect(r).toEqual({ 'keyctl-search': EPERM, 'add-key': EPERM });
      expect(hostProbe('keyctl-search', mine)).toMatch(/errno=126/); // ENOKEY: nothing was left behind
      // Unconfined, the keyring is shared, which is why the filter denies it.
      expect(results(run('--security-opt', 'seccomp=unconfined', img, '/probe/syscall-probe', 'keyctl-search', desc).stdout)['keyctl-search']).toBe(`ok ${added}`);
    } finally {
      hostProbe('invalidate-key', added!);
    }
  });

  it('cannot make and use device nodes it was not given (/dev/kmsg, /dev/hwrng); --privileged can', () => {
    const r = run(img, 'sh', '-c', [
      'mknod /dev/kmsg c 1 11 && echo mknod=ok', 'echo "<7>berth: hostile" 2>/dev/null > /dev/kmsg && echo kmsg=written || echo kmsg=denied',
      'mknod /dev/hwrng c 10 183', 'head -c1 /dev/hwrng > /dev/null 2>&1 && echo hwrng=opened || echo hwrng=denied',
      'dd if=/dev/hwrng of=/dev/null bs=1 count=1 2>&1 | grep -o "Operation not permitted" | head -1',
    ].join('; '));
    expect(r.stdout.trim().split('\n')).toEqual(['mknod=ok', 'kmsg=denied', 'hwrng=denied', 'Operation not permitted']);
    const priv = run('--privileged', img, 'sh', '-c', 'echo "<7>berth: hardening test, privileged may write kmsg" > /dev/kmsg && echo kmsg=written; head -c1 /dev/hwrng > /dev/null && echo hwrng=opened');
    expect(priv.stdout.trim().split('\n')).toEqual(['kmsg=written', 'hwrng=opened']);
  });

  it('a process exec\'d into a running container (health checks) is held to the same device rules and filter', async () => {
    const host = hostPaths('/');
    const parts = new BerthRoot({ root: path.join(root, 'state'), host, env: { PATH: process.env.PATH, ...netTestEnv(), BERTH_RUNTIME: runtime }, version: 'test', board: detectBoard(host) });
    try {
      const engine = await parts.engine();
      const name = `exec-${runtime}`;
      const opts = { ...defaultRunOptions(name), cmd: ['sleep', '60'], volumes: [{ source: probeDir, target: '/probe', readOnly: true, kind: 'bind' as const }] };
      engine.create(img, opts);
      await engine.start(name);
      const r = await engine.exec(name, ['sh', '-c', 'mknod /dev/kmsg c 1 11; echo x 2>/dev/null > /dev/kmsg && echo kmsg=written || echo kmsg=denied; /probe/syscall-probe keyctl-user-keyring'], 20_000);
      expect(r.output.trim().split('\n')).toEqual(['kmsg=denied', `keyctl-user-keyring ${EPERM}`]);
      await engine.remove(name, true);
    } finally {
      parts.close();
    }
  });

  it('reads nothing from /proc/interrupts', () => {
    expect(run(img, 'sh', '-c', 'wc -c < /proc/interrupts')).toMatchObject({ code: 0, stdout: '0\n' });
  });

  it('with the host network, /sys is a fresh read-only sysfs: tracefs mounted under the host\'s /sys is out of reach', () => {
    const tracing = '/sys/kernel/tracing';
    if (!fs.existsSync(path.join(tracing, 'tracing_on'))) {
      execFileSync('mount', ['-t', 'tracefs', 'tracefs', tracing]);
      hostMounts.push(tracing);
    }
    const r = run('--network', 'host', img, 'sh', '-c', [
      'grep -c tracefs /proc/mounts', 'grep " /sys " /proc/mounts | cut -d" " -f3,4 | cut -d, -f1',
      'echo 0 2>/dev/null > /sys/kernel/tracing/tracing_on && echo tracing=writable || echo tracing=denied',
    ].join('; '));
    expect(r.stdout.trim().split('\n')).toEqual(['0', 'sysfs ro', 'tracing=denied']);
  });

  it(':ro volumes are read-only all the way down (rro), mounts below the source included', () => {
    const src = path.join(root, `ro-src-${runtime}`);
    fs.mkdirSync(path.join(src, 'below'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', path.join(src, 'below')]);
    hostMounts.push(path.join(src, 'below'));
    const r = run('-v', `${src}:/data:ro`, img, 'sh', '-c', 'touch /data/top 2>/dev/null || echo top=ro; touch /data/below/x 2>/dev/null && echo below=rw || echo below=ro');
    expect(r.stdout.trim().split('\n')).toEqual(['top=ro', 'below=ro']);
    expect(fs.existsSync(path.join(src, 'below/x'))).toBe(false);
  });

  it("gets oom_score_adj 0, not its starter's", () => {
    // The agent runs at -900; lowering needs CAP_SYS_RESOURCE this sandbox lacks, so berth runs at +300 here: same inheritance.
    const r = spawnSync('sh', ['-c', 'echo 300 > /proc/self/oom_score_adj && exec "$@"', 'sh', BERTH_BIN, '--root', path.join(root, 'state'), 'run', '--rm', img, 'cat', '/proc/self/oom_score_adj'], {
      encoding: 'utf8', env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: runtime },
    });
    expect(r.stdout).toBe('0\n');
  });

  it('inspect shows the filter in force; a profile of its own is applied as written', () => {
    const digest = `sha256:${crypto.createHash('sha256').update(fs.readFileSync(PROFILE)).digest('hex')}`;
    expect(berth(runtime, 'create', '--name', `sec-${runtime}`, img, 'true').code).toBe(0);
    expect(inspect(runtime, `sec-${runtime}`).Security).toMatchObject({
      Seccomp: { mode: 'filter', profile: PROFILE, digest, dockerParity: true, DefaultAction: 'SCMP_ACT_ERRNO' }, OomScoreAdj: 0, NoNewPrivileges: true,
      Devices: expect.stringMatching(runtime === 'runc' ? /enforced by runc/ : /enforced by berth's cgroup/),
    });
    expect(berth(runtime, 'create', '--name', `unc-${runtime}`, '--security-opt', 'seccomp=unconfined', img, 'true').code).toBe(0);
    expect(inspect(runtime, `unc-${runtime}`).Security.Seccomp).toEqual({ mode: 'unconfined', reason: 'seccomp=unconfined' });
    expect(inspect(runtime, `unc-${runtime}`).HostConfig.SecurityOpt).toEqual(['seccomp=unconfined']);
    expect(berth(runtime, 'create', '--name', `priv-${runtime}`, '--privileged', img, 'true').code).toBe(0);
    expect(inspect(runtime, `priv-${runtime}`).Security.Seccomp).toEqual({ mode: 'unconfined', reason: 'privileged' });
    berth(runtime, 'rm', `sec-${runtime}`, `unc-${runtime}`, `priv-${runtime}`);

    // Docker's format: everything allowed but mkdir, which says EACCES.
    const own = path.join(root, `own-${runtime}.json`);
    fs.writeFileSync(own, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }));
    const r = run('--security-opt', `seccomp=${own}`, img, 'sh', '-c', 'mkdir /tmp/x 2>&1; /probe/syscall-probe unshare-user');
    expect(r.stdout).toMatch(/Permission denied/);
    expect(r.stdout).toMatch(/^unshare-user ok/m); // as written: no Docker-parity denials added to a profile of one's own
    fs.writeFileSync(own, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_DENY_ALL' }] }));
    expect(run('--security-opt', `seccomp=${own}`, img, 'true')).toMatchObject({ code: 3, stderr: expect.stringMatching(/syscalls\[0\]\.action "SCMP_ACT_DENY_ALL" is not a seccomp action/) });
  });

  it.skipIf(hostAppArmor)('apparmor=PROFILE is refused on a host without AppArmor; apparmor=unconfined is accepted', () => {
    expect(run('--security-opt', 'apparmor=docker-default', img, 'true')).toMatchObject({ code: 6, stderr: expect.stringMatching(/apparmor=docker-default: this host has no AppArmor/) });
    expect(run('--security-opt', 'apparmor=unconfined', img, 'true').code).toBe(0);
  });
});
