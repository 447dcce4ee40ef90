// `berth run`'s docker-parity options for issue 17 (privileged, capabilities, security options, groups,
// init, env files, sysctls, /dev/shm, device cgroup rules, ulimits, OOM score, logging), each shown
// taking effect in a real container under crun and under runc.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capabilityMask, DEFAULT_CAPABILITIES } from '../../src/runtime/capabilities.js';
import { BERTH_BIN, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

let registry: RegistryInstance;
let root: string;
let img: string;

const has = (exe: string): boolean => spawnSync('sh', ['-c', `command -v ${exe}`]).status === 0;
const runtimes = (['crun', 'runc'] as const).filter(has);
const initInstalled = fs.existsSync('/usr/bin/tini-static') || fs.existsSync('/usr/libexec/docker/docker-init');

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'opts/busybox', 'v1');
  img = `${registry.host}/opts/busybox:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-opts-'));
  expect(berth('', 'pull', '-q', img).code).toBe(0);
});
afterAll(async () => {
  const left = JSON.parse(berth('', 'ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('', 'rm', '-f', ...left.map((c) => c.name));
  await registry?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

function berth(runtime: string, ...args: string[]) {
  const r = spawnSync(BERTH_BIN, ['--root', root, ...args], { encoding: 'utf8', env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: runtime } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const capEff = (status: string): bigint => BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)![1]}`);
const CAP_NET_ADMIN = 1n << 12n;

describe.each(runtimes)('berth run options under %s', (runtime) => {
  const run = (...args: string[]) => berth(runtime, 'run', '--rm', ...args);

  it('--cap-add NET_ADMIN lets the container take its loopback down; without it the kernel refuses', () => {
    const withCap = run('--cap-add', 'net_admin', img, 'sh', '-c', 'grep CapEff /proc/self/status; ip link set lo down && echo down');
    expect(withCap.code).toBe(0);
    expect(capEff(withCap.stdout) & CAP_NET_ADMIN).toBe(CAP_NET_ADMIN);
    expect(withCap.stdout).toMatch(/^down$/m);
    const without = run(img, 'sh', '-c', 'grep CapEff /proc/self/status; ip link set lo down 2>/dev/null || echo refused');
    expect(capEff(without.stdout)).toBe(capabilityMask(DEFAULT_CAPABILITIES));
    expect(without.stdout).toMatch(/^refused$/m);
  });

  it('--cap-drop ALL --cap-add CHOWN leaves exactly CAP_CHOWN', () => {
    const r = run('--cap-drop', 'ALL', '--cap-add', 'CHOWN', img, 'sh', '-c', 'grep CapEff /proc/self/status');
    expect(capEff(r.stdout)).toBe(1n);
  });

  it('an unknown capability is refused before anything runs, naming it', () => {
    expect(run('--cap-add', 'NET_WIZARD', img, 'true')).toMatchObject({ code: 3, stderr: expect.stringMatching(/--cap-add: unknown capability "NET_WIZARD"/) });
  });

  it('--privileged sees the host\'s devices, all capabilities, an unmasked /proc and a writable /sys', () => {
    const r = run('--privileged', img, 'sh', '-c', 'test -c /dev/kmsg && echo kmsg; test -b /dev/loop0 && echo loop0; grep -E "CapEff|NoNewPrivs" /proc/self/status; test -f /proc/timer_list && echo timer_list; grep " /sys " /proc/mounts');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^kmsg$/m);
    expect(r.stdout).toMatch(/^loop0$/m);
    expect(capEff(r.stdout) & CAP_NET_ADMIN).toBe(CAP_NET_ADMIN);
    expect(r.stdout).toMatch(/^NoNewPrivs:\s+0$/m);
    expect(r.stdout).toMatch(/^timer_list$/m);
    expect(r.stdout).toMatch(/ \/sys sysfs rw,/);
    const kept = berth(runtime, 'create', '--name', `priv-${runtime}`, '--privileged', '--cap-add', 'sys_rawio', '--security-opt', 'no-new-privileges', img, 'true');
    expect(kept.code).toBe(0);
    const hc = (JSON.parse(berth(runtime, 'inspect', `priv-${runtime}`).stdout) as Array<Record<string, any>>)[0]!.HostConfig;
    expect(hc).toMatchObject({ Privileged: true, CapAdd: ['CAP_SYS_RAWIO'], SecurityOpt: ['no-new-privileges:true'] });
    berth(runtime, 'rm', `priv-${runtime}`);
    const plain = run(img, 'sh', '-c', 'test -e /dev/kmsg || echo no-kmsg; test -c /proc/timer_list && echo timer_list-masked; grep " /sys " /proc/mounts');
    expect(plain.stdout).toMatch(/^no-kmsg$/m);
    expect(plain.stdout).toMatch(/^timer_list-masked$/m);
    expect(plain.stdout).toMatch(/ \/sys sysfs ro,/);
  });

  it('--security-opt no-new-privileges:false turns no_new_privs off; a missing seccomp profile is refused, naming it', () => {
    expect(run(img, 'cat', '/proc/self/status').stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(run('--security-opt', 'no-new-privileges:false', '--security-opt', 'label=disable', img, 'cat', '/proc/self/status').stdout).toMatch(/NoNewPrivs:\s+0/);
    expect(run('--security-opt', 'seccomp=/x.json', img, 'true')).toMatchObject({ code: 4, stderr: expect.stringMatching(/seccomp=\/x.json: no such file/) });
  });

  it('--sysctl sets a namespaced sysctl in the container only; a host-wide one is refused', () => {
    expect(run('--sysctl', 'net.ipv4.ip_unprivileged_port_start=0', img, 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start')).toMatchObject({ code: 0, stdout: '0\n' });
    expect(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')).not.toBe('0\n');
    expect(run('--sysctl', 'vm.swappiness=1', img, 'true')).toMatchObject({ code: 3, stderr: expect.stringMatching(/not a namespaced sysctl/) });
  });

  it('--shm-size sizes /dev/shm; --ulimit nofile sets the limit; --oom-score-adj the score', () => {
    const r = run('--shm-size', '16m', '--ulimit', 'nofile=512:1024', '--oom-score-adj', '300', img, 'sh', '-c', 'df -k /dev/shm | tail -1; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj');
    expect(r.code).toBe(0);
    const [df, soft, hard, oom] = r.stdout.trim().split('\n');
    expect(df!.split(/\s+/)[1]).toBe('16384');
    expect([soft, hard, oom]).toEqual(['512', '1024', '300']);
  });

  it('--tmpfs with options: size (even 1.5m), mode and owner take effect; an unknown option is refused', () => {
    const r = run('--tmpfs', '/cache:size=1.5m,mode=1770,uid=1000,gid=1000', img, 'sh', '-c', 'df -k /cache | tail -1; stat -c "%a %u %g" /cache');
    expect(r.code).toBe(0);
    const [df, st] = r.stdout.trim().split('\n');
    expect(df!.split(/\s+/)[1]).toBe('1536');
    expect(st).toBe('1770 1000 1000');
    expect(run('--tmpfs', '/cache:tmpcopyup', img, 'true')).toMatchObject({ code: 3, stderr: expect.stringMatching(/invalid tmpfs option "tmpcopyup"/) });
  });

  it('--group-add adds groups by gid; a name the image does not define is refused', () => {
    expect(run('--group-add', '44', '--group-add', '100', img, 'sh', '-c', 'id -G')).toMatchObject({ code: 0, stdout: '0 44 100\n' });
    expect(run('--group-add', 'gpio', img, 'true')).toMatchObject({ code: 3, stderr: expect.stringMatching(/--group-add: unable to find group gpio/) });
  });

  it('--env-file reads compose .env syntax, -e wins', () => {
    const file = path.join(root, `${runtime}.env`);
    fs.writeFileSync(file, '# comment\nGREETING="hello world"\nNAME=file\nexport TZ=Etc/UTC\n');
    expect(run('--env-file', file, '-e', 'NAME=flag', img, 'sh', '-c', 'echo "$GREETING|$NAME|$TZ"')).toMatchObject({ code: 0, stdout: 'hello world|flag|Etc/UTC\n' });
  });

  it.skipIf(!initInstalled)('--init runs the host\'s static tini as PID 1, the command under it', () => {
    const r = run('--init', img, 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; echo $$');
    expect(r.code).toBe(0);
    const [pid1, self] = r.stdout.trim().split('\n');
    expect(pid1).toMatch(/^\/sbin\/docker-init -- sh -c /);
    expect(self).not.toBe('1');
  });

  it('--pid container:X and --ipc container:X join X\'s namespaces (refused by name once X stops); --pid host is the host\'s', () => {
    const x = `ns-x-${runtime}`;
    const nsOf = (out: string, ns: string): string | undefined => new RegExp(` ${ns} -> ${ns}:\\[(\\d+)\\]`).exec(out)?.[1];
    expect(berth(runtime, 'run', '-d', '--name', x, '--network', 'none', img, 'sleep', '3600').code).toBe(0);
    try {
      const inX = berth(runtime, 'exec', x, 'ls', '-l', '/proc/self/ns/').stdout;
      const joined = run('--network', 'none', '--pid', `container:${x}`, '--ipc', `container:${x}`, img, 'sh', '-c', 'cat /proc/1/cmdline; echo; ls -l /proc/self/ns/');
      expect(joined.code, joined.stderr).toBe(0);
      expect(joined.stdout.split('\n')[0]).toBe('sleep\u00003600\u0000');
      expect(nsOf(joined.stdout, 'pid')).toBe(nsOf(inX, 'pid'));
      expect(nsOf(joined.stdout, 'ipc')).toBe(nsOf(inX, 'ipc'));
      const own = run('--network', 'none', img, 'ls', '-l', '/proc/self/ns/').stdout;
      expect(nsOf(own, 'ipc')).not.toBe(nsOf(inX, 'ipc'));
      expect(nsOf(own, 'pid')).not.toBe(nsOf(inX, 'pid'));
      const host = run('--network', 'none', '--pid', 'host', img, 'ls', '-l', '/proc/self/ns/').stdout;
      expect(`pid:[${nsOf(host, 'pid')}]`).toBe(fs.readlinkSync('/proc/self/ns/pid'));
      expect(berth(runtime, 'stop', '-t', '0', x).code).toBe(0);
      const refused = run('--network', 'none', '--ipc', `container:${x}`, img, 'true');
      expect(refused).toMatchObject({ code: 5, stderr: expect.stringContaining(`container ${x}, whose ipc namespace it joins (--ipc container:${x}), is not running`) });
    } finally {
      berth(runtime, 'rm', '-f', x);
    }
  });

  it('--dns-search and --dns-option write the container\'s resolv.conf; --expose is kept', () => {
    const r = run('--dns-search', 'farm.lan', '--dns-option', 'ndots:2', '--expose', '1883', img, 'cat', '/etc/resolv.conf');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^search farm\.lan$/m);
    expect(r.stdout).toMatch(/^options ndots:2$/m);
    expect(run('--expose', '99999', img, 'true')).toMatchObject({ code: 3, stderr: expect.stringContaining('--expose: "99999" is not a port') });
  });

  it('--log-driver none keeps no log; --log-opt max-size/max-file cap and rotate it', async () => {
    const chatty = 'i=0; while [ $i -lt 400 ]; do echo "line $i ........................................"; i=$((i+1)); done';
    const none = berth(runtime, 'run', '-d', '--name', `nolog-${runtime}`, '--log-driver', 'none', img, 'sh', '-c', chatty).stdout.trim();
    const capped = berth(runtime, 'run', '-d', '--name', `capped-${runtime}`, '--log-opt', 'max-size=4k', '--log-opt', 'max-file=2', img, 'sh', '-c', chatty).stdout.trim();
    for (const name of [`nolog-${runtime}`, `capped-${runtime}`]) {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && berth(runtime, 'ps', '--json').stdout.includes(name)) await new Promise((r) => setTimeout(r, 100));
    }
    const stateOf = (id: string) => path.join(root, 'containers', id, 'state');
    expect(fs.readdirSync(stateOf(none)).filter((f) => f.startsWith('container.log'))).toEqual([]);
    expect(berth(runtime, 'logs', `nolog-${runtime}`).stdout).toBe('');
    const logs = fs.readdirSync(stateOf(capped)).filter((f) => f.startsWith('container.log')).sort();
    expect(logs).toEqual(['container.log', 'container.log.1']);
    for (const f of logs) expect(fs.statSync(path.join(stateOf(capped), f)).size).toBeLessThanOrEqual(4096);
    expect(berth(runtime, 'logs', '--tail', '1', `capped-${runtime}`).stdout).toBe('line 399 ........................................\n');
    const inspect = (name: string) => (JSON.parse(berth(runtime, 'inspect', name).stdout) as Array<Record<string, any>>)[0]!;
    expect(inspect(`nolog-${runtime}`)).toMatchObject({ HostConfig: { LogConfig: { Type: 'none', Config: {} } }, LogPath: '' });
    expect(inspect(`capped-${runtime}`).HostConfig.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '4096', 'max-file': '2' } });
    berth(runtime, 'rm', `nolog-${runtime}`, `capped-${runtime}`);
  });
});

// Only runc enforces device rules on this hybrid host (through the v1 devices controller); crun runs
// with its cgroup manager disabled there (REFERENCE §4) and enforces none.
describe.skipIf(!runtimes.includes('runc'))('--device-cgroup-rule under runc', () => {
  it('a node the container makes itself is usable only when a rule allows it', () => {
    // /dev/fuse's numbers: opening it needs no capability, so only the device cgroup decides.
    const script = 'mknod /tmp/fuse c 10 229 && ( (: < /tmp/fuse) 2>/dev/null && echo opened || echo denied)';
    expect(berth('runc', 'run', '--rm', img, 'sh', '-c', script).stdout).toBe('denied\n');
    expect(berth('runc', 'run', '--rm', '--device-cgroup-rule', 'c 10:229 rw', img, 'sh', '-c', script).stdout).toBe('opened\n');
  });
});
