import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cgroupV2Files, parseCpuList, toLinuxResources } from '../../src/cgroup/resources.js';
import { runOptionsFrom, type RunFlags } from '../../src/cli/run-flags.js';
import { BerthError } from '../../src/errors.js';
import { capabilityMask, DEFAULT_CAPABILITIES, normalizeCapability, resolveCapabilities } from '../../src/runtime/capabilities.js';
import { findInitBinary } from '../../src/runtime/init.js';
import { monitorLogOptions } from '../../src/runtime/monitor.js';
import {
  defaultRunOptions, parseDeviceCgroupRule, parseGroupAdd, parseLogOptions, parseSecurityOpt, parseSysctl, validateRunOptions, type RunOptions,
} from '../../src/runtime/options.js';
import { buildSpec, INIT_PATH_IN_CONTAINER, SECCOMP_ANNOTATION, type BuildSpecInput } from '../../src/runtime/spec/build.js';
import type { DeviceStat, HostFacts } from '../../src/runtime/spec/host.js';
import { fixtureSeccomp } from '../helpers/seccomp-fixture.js';

const ALL_CAPS_BOUNDING = (1n << 41n) - 1n;

/**
 * The host boundary as the spec builder sees it (HostFacts is its injection point): a /dev tree with a
 * few nodes, a symlink into /proc and the directories runc skips, so the privileged walk can be checked
 * without a real /dev.
 */
function fakeHost(capBounding = ALL_CAPS_BOUNDING): HostFacts {
  const c = (major: number, minor: number): DeviceStat => ({ kind: 'c', major, minor, mode: 0o20660, uid: 0, gid: 998 });
  const tree: Record<string, DeviceStat> = {
    '/dev': { kind: 'dir', entries: ['console', 'fd', 'gpiomem', 'i2c-1', 'mmcblk0', 'pts', 'shm', 'snd', 'stdin'] },
    '/dev/console': c(5, 1),
    '/dev/fd': { kind: 'other' }, // a symlink to /proc/self/fd, not followed
    '/dev/stdin': { kind: 'other' },
    '/dev/gpiomem': c(244, 0),
    '/dev/i2c-1': c(89, 1),
    '/dev/mmcblk0': { kind: 'b', major: 179, minor: 0, mode: 0o60660, uid: 0, gid: 6 },
    '/dev/pts': { kind: 'dir', entries: ['0'] },
    '/dev/pts/0': c(136, 0),
    '/dev/shm': { kind: 'dir', entries: [] },
    '/dev/snd': { kind: 'dir', entries: ['controlC0'] },
    '/dev/snd/controlC0': c(116, 0),
  };
  return { rlimitHard: {}, cgroupNamespace: true, capBounding, statDevice: (p) => tree[p] };
}

let tmp: string;
let rootfs: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-spec-sec-'));
  rootfs = path.join(tmp, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\naudio:x:29:app\ni2c:x:998:\napp:x:1000:\n');
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const defaults = { memoryHighBytes: 200 << 20, memoryMaxBytes: 256 << 20, pidsLimit: 512, cpuWeight: 100 };
function input(over: Partial<RunOptions> = {}, rest: Partial<BuildSpecInput> = {}): BuildSpecInput {
  const options = validateRunOptions({ ...defaultRunOptions('web'), ...over });
  return {
    id: 'c0ffee1234567890', image: { config: { Entrypoint: ['/bin/app'], Cmd: ['--serve'] } }, options, rootfs, stateRoot: path.join(tmp, 'state'),
    host: fakeHost(), resources: toLinuxResources(options, defaults), cgroupsEnforced: true, seccomp: fixtureSeccomp(tmp), ...rest,
  };
}
const mount = (s: ReturnType<typeof buildSpec>, dest: string) => s.mounts.find((m) => m.destination === dest);

describe('capabilities (Docker: moby caps.TweakCapabilities)', () => {
  it('normalizes names: any case, with or without CAP_, ALL; unknown refused naming it', () => {
    expect(normalizeCapability('net_admin', '--cap-add')).toBe('CAP_NET_ADMIN');
    expect(normalizeCapability('CAP_SYS_RAWIO', '--cap-add')).toBe('CAP_SYS_RAWIO');
    expect(normalizeCapability('all', '--cap-drop')).toBe('ALL');
    expect(() => normalizeCapability('NET_WIZARD', 'services.x.cap_add')).toThrow(/^services\.x\.cap_add: unknown capability "NET_WIZARD"/);
  });

  it('default set, plus adds, minus drops; an add wins over a drop of the same name', () => {
    const caps = resolveCapabilities({ capAdd: ['CAP_NET_ADMIN', 'CAP_SYS_RAWIO'], capDrop: ['CAP_NET_RAW', 'CAP_NET_ADMIN'] });
    expect(caps.effective).toContain('CAP_NET_ADMIN');
    expect(caps.effective).toContain('CAP_SYS_RAWIO');
    expect(caps.effective).not.toContain('CAP_NET_RAW');
    expect(caps.effective).toHaveLength(DEFAULT_CAPABILITIES.length + 1);
    expect(caps.bounding).toEqual(caps.effective);
    expect(caps.permitted).toEqual(caps.effective);
    expect(caps.inheritable).toEqual([]);
    expect(caps.ambient).toEqual([]);
  });

  it('drop ALL keeps only the adds; add ALL is everything but the drops; privileged is everything', () => {
    expect(resolveCapabilities({ capDrop: ['ALL'], capAdd: ['CAP_CHOWN'] }).effective).toEqual(['CAP_CHOWN']);
    const all = resolveCapabilities({ capAdd: ['ALL'], capDrop: ['CAP_SYS_ADMIN'] }).effective;
    expect(all).toHaveLength(40);
    expect(all).not.toContain('CAP_SYS_ADMIN');
    expect(capabilityMask(resolveCapabilities({ privileged: true, capDrop: ['ALL'] }).effective)).toBe(ALL_CAPS_BOUNDING);
  });

  it('never grants what berth\'s own bounding set lacks', () => {
    const noSysAdmin = ALL_CAPS_BOUNDING & ~(1n << 21n);
    expect(resolveCapabilities({ privileged: true }, noSysAdmin).effective).not.toContain('CAP_SYS_ADMIN');
  });
});

describe('option parsers', () => {
  it('--security-opt: no-new-privileges forms, seccomp and apparmor choices, refused confinement berth cannot give', () => {
    expect(parseSecurityOpt('no-new-privileges')).toEqual({ noNewPrivileges: true });
    expect(parseSecurityOpt('no-new-privileges:false')).toEqual({ noNewPrivileges: false });
    expect(parseSecurityOpt('no-new-privileges=true', { unconfinedSystemPaths: true })).toEqual({ noNewPrivileges: true, unconfinedSystemPaths: true });
    for (const noop of ['label=disable', 'label:disable']) expect(parseSecurityOpt(noop)).toEqual({});
    expect(parseSecurityOpt('apparmor:unconfined')).toEqual({ apparmor: 'unconfined' });
    expect(parseSecurityOpt('apparmor=docker-default')).toEqual({ apparmor: 'docker-default' });
    expect(parseSecurityOpt('seccomp=unconfined')).toEqual({ seccomp: 'unconfined' });
    expect(parseSecurityOpt('seccomp:/etc/profile.json', { noNewPrivileges: true })).toEqual({ seccomp: '/etc/profile.json', noNewPrivileges: true });
    expect(() => parseSecurityOpt('seccomp=profile.json')).toThrow(/--security-opt seccomp=profile.json: the profile path must be absolute/);
    expect(() => parseSecurityOpt('seccomp=', {}, 'services.web.security_opt')).toThrow(/^services.web.security_opt seccomp=: use seccomp=unconfined/);
    expect(() => parseSecurityOpt('apparmor=')).toThrow(/name a profile loaded on the host/);
    expect(parseSecurityOpt('systempaths=unconfined')).toEqual({ unconfinedSystemPaths: true });
    expect(() => parseSecurityOpt('label=type:svirt_t')).toThrow(/no SELinux labels/);
    expect(() => parseSecurityOpt('no-new-privileges:maybe')).toThrow(/no-new-privileges:false/);
    expect(() => parseSecurityOpt('privileged')).toThrow(/--security-opt privileged: unknown security option/);
  });

  it('--sysctl: namespaced ones only, net.* only with the container\'s own network', () => {
    expect(parseSysctl('net.ipv4.ip_forward=1')).toEqual(['net.ipv4.ip_forward', '1']);
    expect(parseSysctl('net/core/somaxconn=1024')).toEqual(['net.core.somaxconn', '1024']);
    expect(parseSysctl('kernel.shmmax=68719476736')).toEqual(['kernel.shmmax', '68719476736']);
    expect(parseSysctl('fs.mqueue.msg_max=100')).toEqual(['fs.mqueue.msg_max', '100']);
    expect(() => parseSysctl('kernel.hostname=x')).toThrow(/not a namespaced sysctl/);
    expect(() => parseSysctl('vm.swappiness=10')).toThrow(/--sysctl vm\.swappiness: not a namespaced sysctl/);
    expect(() => parseSysctl('novalue')).toThrow(/is not KEY=VALUE/);
    expect(() => validateRunOptions({ ...defaultRunOptions('a'), network: 'host', sysctls: { 'net.ipv4.ip_forward': '1' } })).toThrow(/net\.\* sysctls are not allowed with the host's network/);
    expect(() => validateRunOptions({ ...defaultRunOptions('a'), network: 'host', sysctls: { 'kernel.sem': '1 2 3 4' } })).not.toThrow();
  });

  it('--device-cgroup-rule, --group-add', () => {
    expect(parseDeviceCgroupRule('c 189:* rwm')).toEqual({ allow: true, type: 'c', major: 189, access: 'rwm' });
    expect(parseDeviceCgroupRule('a *:* r')).toEqual({ allow: true, type: 'a', access: 'r' });
    expect(parseDeviceCgroupRule('b 8:0 rw')).toEqual({ allow: true, type: 'b', major: 8, minor: 0, access: 'rw' });
    for (const bad of ['c 189 rwm', 'x 1:2 r', 'c 1:2 rwx', 'c 1:2 rr']) expect(() => parseDeviceCgroupRule(bad)).toThrow(/is not TYPE MAJOR:MINOR ACCESS/);
    expect(parseGroupAdd('dialout')).toBe('dialout');
    expect(parseGroupAdd('44')).toBe('44');
    expect(() => parseGroupAdd('bad group')).toThrow(/neither a group name nor a numeric gid/);
  });

  it('--log-driver/--log-opt map onto the capped log; other drivers and options are refused by name', () => {
    expect(parseLogOptions(undefined, ['max-size=10m', 'max-file=3'])).toEqual({ driver: 'json-file', maxSize: 10 << 20, maxFile: 3 });
    expect(parseLogOptions('local', { 'max-size': '200k' })).toEqual({ driver: 'local', maxSize: 200 << 10 });
    expect(parseLogOptions('none', [])).toEqual({ driver: 'none' });
    expect(() => parseLogOptions('syslog', [])).toThrow(/log driver "syslog" is not supported/);
    expect(() => parseLogOptions('json-file', ['compress=true'])).toThrow(/log option "compress" is not supported/);
    expect(() => parseLogOptions('none', ['max-size=1m'])).toThrow(/none log driver takes no options/);
    expect(() => parseLogOptions(undefined, ['max-size=1k'])).toThrow(/at least 4k/);
    expect(monitorLogOptions({ driver: 'json-file', maxSize: 1 << 20 }, { logMaxBytes: 4096, logMaxFiles: 2 })).toEqual({ logMaxBytes: 1 << 20, logMaxFiles: 2 });
    expect(monitorLogOptions(undefined, { logMaxBytes: 4096, logMaxFiles: 2 })).toEqual({ logMaxBytes: 4096, logMaxFiles: 2 });
    expect(monitorLogOptions({ driver: 'none' }, { logMaxBytes: 4096, logMaxFiles: 2 })).toEqual({ logMaxBytes: 0, logMaxFiles: 1, logPath: '/dev/null' });
  });

  it('--cpuset-cpus reaches linux.resources.cpu.cpus and cpuset.cpus; a bad list is refused', () => {
    expect(parseCpuList('0-1, 3')).toBe('0-1,3');
    for (const bad of ['', 'a', '3-1', '1,,2', '-1']) expect(() => parseCpuList(bad)).toThrow(/is not a CPU list/);
    const r = toLinuxResources({ cpusetCpus: '0' }, defaults);
    expect(r.cpu).toEqual({ cpus: '0' });
    expect(cgroupV2Files(r)['cpuset.cpus']).toBe('0');
  });
});

describe('buildSpec with the new options', () => {
  it('--privileged: all capabilities, the host\'s device nodes (not /dev/pts, /dev/shm, console, symlinks), allow-all devices, nothing masked, /sys rw, no_new_privs off', () => {
    const s = buildSpec(input({ privileged: true }));
    expect(capabilityMask(s.process.capabilities.effective)).toBe(ALL_CAPS_BOUNDING);
    expect(s.linux.devices.map((d) => d.path)).toEqual(['/dev/gpiomem', '/dev/i2c-1', '/dev/mmcblk0', '/dev/snd/controlC0']);
    expect(s.linux.devices.find((d) => d.path === '/dev/mmcblk0')).toEqual({ path: '/dev/mmcblk0', type: 'b', major: 179, minor: 0, fileMode: 0o660, uid: 0, gid: 6 });
    expect(s.linux.resources.devices).toEqual([{ allow: true, access: 'rwm' }]);
    expect(s.linux.maskedPaths).toEqual([]);
    expect(s.linux.readonlyPaths).toEqual([]);
    expect(mount(s, '/sys')?.options).toContain('rw');
    expect(mount(s, '/sys/fs/cgroup')?.options).toContain('rw');
    expect(s.process.noNewPrivileges).toBe(false);
    expect(buildSpec(input({ privileged: true, security: { noNewPrivileges: true } })).process.noNewPrivileges).toBe(true);
    expect(s.linux.seccomp).toBeUndefined();
    expect(JSON.parse(s.annotations![SECCOMP_ANNOTATION]!)).toEqual({ mode: 'unconfined', reason: 'privileged' });
  });

  it('seccomp: the default filter converted for the container\'s own capabilities, recorded for inspect; unconfined leaves none', () => {
    const s = buildSpec(input());
    expect(s.linux.seccomp?.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(s.linux.seccomp?.syscalls.flatMap((r) => (r.action === 'SCMP_ACT_ALLOW' ? r.names : []))).not.toContain('unshare');
    expect(JSON.parse(s.annotations![SECCOMP_ANNOTATION]!)).toMatchObject({ mode: 'filter', dockerParity: true });
    // With CAP_SYS_ADMIN the profile's own rule for it applies, and the parity denial is lifted.
    const admin = buildSpec(input({ capAdd: ['CAP_SYS_ADMIN'] }));
    expect(admin.linux.seccomp?.syscalls.flatMap((r) => (r.action === 'SCMP_ACT_ALLOW' ? r.names : []))).toEqual(expect.arrayContaining(['unshare', 'bpf']));
    expect(buildSpec(input({ security: { seccomp: 'unconfined' } })).linux.seccomp).toBeUndefined();
  });

  it('apparmor=PROFILE only where the host has AppArmor; :ro binds are rro where the kernel has mount_setattr', () => {
    expect(() => buildSpec(input({ security: { apparmor: 'docker-default' } }))).toThrow(/apparmor=docker-default: this host has no AppArmor/);
    expect(buildSpec(input({ security: { apparmor: 'unconfined' } })).process.apparmorProfile).toBeUndefined();
    expect(buildSpec(input({ security: { apparmor: 'docker-default' } }, { host: { ...fakeHost(), appArmor: true } })).process.apparmorProfile).toBe('docker-default');
    const ro = { volumes: [{ source: 'data', target: '/data', readOnly: true, kind: 'volume' as const }] };
    expect(mount(buildSpec(input(ro, { host: { ...fakeHost(), recursiveReadOnly: true } })), '/data')?.options).toEqual(['rbind', 'rprivate', 'rro']);
    expect(mount(buildSpec(input(ro)), '/data')?.options).toEqual(['rbind', 'rprivate', 'ro']);
  });

  it('an unprivileged container keeps its confinement; systempaths=unconfined and no-new-privileges:false lift one part each', () => {
    const s = buildSpec(input({ capAdd: ['CAP_NET_ADMIN'] }));
    expect(s.process.capabilities.effective).toContain('CAP_NET_ADMIN');
    expect(s.linux.devices).toEqual([]);
    expect(s.linux.maskedPaths.length).toBeGreaterThan(0);
    expect(mount(s, '/sys')?.options).toContain('ro');
    expect(s.process.noNewPrivileges).toBe(true);
    const lifted = buildSpec(input({ security: { unconfinedSystemPaths: true, noNewPrivileges: false } }));
    expect(lifted.linux.maskedPaths).toEqual([]);
    expect(lifted.linux.readonlyPaths).toEqual([]);
    expect(lifted.process.noNewPrivileges).toBe(false);
    expect(mount(lifted, '/sys')?.options).toContain('ro');
  });

  it('sysctls, shm size, device cgroup rules after the defaults', () => {
    const s = buildSpec(input({ sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' }, shmSize: 256 << 20, deviceCgroupRules: [parseDeviceCgroupRule('c 189:* rwm')] }));
    expect(s.linux.sysctl).toEqual({ 'net.ipv4.ip_unprivileged_port_start': '0' });
    expect(mount(s, '/dev/shm')?.options).toContain(`size=${256 << 20}`);
    expect(s.linux.resources.devices?.[0]).toEqual({ allow: false, access: 'rwm' });
    expect(s.linux.resources.devices?.at(-1)).toEqual({ allow: true, type: 'c', major: 189, access: 'rwm' });
    expect(buildSpec(input()).linux.sysctl).toBeUndefined();
  });

  it('--group-add: names from the image\'s /etc/group and gids, after the user\'s own groups; an unknown name is refused', () => {
    const s = buildSpec(input({ user: 'app', groupAdd: ['i2c', '44', 'audio'] }));
    expect(s.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [29, 998, 44] });
    expect(buildSpec(input({ groupAdd: ['998'] })).process.user).toEqual({ uid: 0, gid: 0, additionalGids: [998] });
    expect(() => buildSpec(input({ groupAdd: ['gpio'] }))).toThrow(/--group-add: unable to find group gpio/);
  });

  it('--init: the host\'s static init at /sbin/docker-init runs the command', () => {
    const s = buildSpec(input({ init: true }, { initPath: '/usr/bin/tini-static' }));
    expect(s.process.args).toEqual([INIT_PATH_IN_CONTAINER, '--', '/bin/app', '--serve']);
    expect(mount(s, INIT_PATH_IN_CONTAINER)).toEqual({ destination: '/sbin/docker-init', type: 'bind', source: '/usr/bin/tini-static', options: ['bind', 'ro', 'nosuid', 'nodev'] });
    expect(() => buildSpec(input({ init: true }))).toThrow(BerthError);
  });

  it('the init binary is a static one found on the search path; none is a host error saying what to install', () => {
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    let caught: unknown;
    try {
      findInitBinary(bin, []);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(BerthError);
    expect((caught as BerthError).category).toBe('host');
    expect((caught as BerthError).hint).toMatch(/apt install tini/);
    fs.writeFileSync(path.join(bin, 'tini'), '', { mode: 0o755 }); // dynamically linked: not a candidate
    expect(() => findInitBinary(bin, [])).toThrow(/needs a static init binary/);
    fs.writeFileSync(path.join(bin, 'tini-static'), '', { mode: 0o755 });
    expect(findInitBinary(bin, [])).toBe(path.join(bin, 'tini-static'));
  });

  it('--oom-score-adj replaces the priority class\'s; a negative one without CAP_SYS_RESOURCE is refused, not dropped', () => {
    expect(buildSpec(input({ oomScoreAdj: 500 })).process.oomScoreAdj).toBe(500);
    expect(buildSpec(input({ oomScoreAdj: -500 })).process.oomScoreAdj).toBe(-500);
    const noSysResource = ALL_CAPS_BOUNDING & ~(1n << 24n);
    expect(() => buildSpec(input({ oomScoreAdj: -500 }, { host: fakeHost(noSysResource) }))).toThrow(/lowering the OOM score needs CAP_SYS_RESOURCE/);
    expect(() => validateRunOptions({ ...defaultRunOptions('a'), oomScoreAdj: 1001 })).toThrow(/out of range -1000…1000/);
  });
});

describe('berth run flags → RunOptions', () => {
  const flags = (over: Partial<RunFlags>): RunFlags => ({
    env: [], volume: [], device: [], tmpfs: [], label: [], restart: 'no', network: 'private', publish: [], networkAlias: [], dns: [], dnsSearch: [], dnsOption: [], expose: [], addHost: [], ulimit: [], envFile: [], capAdd: [], capDrop: [],
    securityOpt: [], groupAdd: [], sysctl: [], deviceCgroupRule: [], logOpt: [], name: 'x', ...over,
  });

  it('turns every new flag into its option', () => {
    const o = runOptionsFrom(flags({
      privileged: true, capAdd: ['net_admin'], capDrop: ['ALL'], securityOpt: ['no-new-privileges', 'label=disable'], groupAdd: ['dialout'], init: true,
      sysctl: ['net.ipv4.ip_forward=1'], shmSize: '128m', deviceCgroupRule: ['c 13:* rwm'], oomScoreAdj: '-100', cpusetCpus: '0', logDriver: 'none', tty: true,
    }), [], {});
    expect(o).toMatchObject({
      privileged: true, capAdd: ['CAP_NET_ADMIN'], capDrop: ['ALL'], security: { noNewPrivileges: true }, groupAdd: ['dialout'], init: true,
      sysctls: { 'net.ipv4.ip_forward': '1' }, shmSize: 128 << 20, deviceCgroupRules: [{ allow: true, type: 'c', major: 13, access: 'rwm' }], oomScoreAdj: -100,
      cpusetCpus: '0', log: { driver: 'none' }, tty: true,
    });
    expect(runOptionsFrom(flags({}), [], {})).not.toHaveProperty('privileged');
    expect(() => runOptionsFrom(flags({ capAdd: ['FLY'] }), [], {})).toThrow(/--cap-add: unknown capability "FLY"/);
  });

  it('--pid, --ipc, --dns-search, --dns-option and --expose use the parsers compose uses', () => {
    const o = runOptionsFrom(flags({ pid: 'host', ipc: 'container:db', dnsSearch: ['farm.lan'], dnsOption: ['ndots:2', 'edns0'], expose: ['1883', '9000-9001/udp'] }), [], {});
    expect(o).toMatchObject({ pidMode: 'host', ipcMode: 'container:db', dnsSearch: ['farm.lan'], dnsOptions: ['ndots:2', 'edns0'], expose: ['1883/tcp', '9000-9001/udp'] });
    expect(runOptionsFrom(flags({ pid: 'container:db', ipc: 'shareable' }), [], {})).toMatchObject({ pidMode: 'container:db', ipcMode: 'shareable' });
    expect(() => runOptionsFrom(flags({ pid: 'private' }), [], {})).toThrow('--pid: "private" is not a PID namespace mode: use host or container:NAME');
    expect(() => runOptionsFrom(flags({ ipc: 'container:' }), [], {})).toThrow('--ipc: container: needs a container name or id');
    expect(() => runOptionsFrom(flags({ ipc: 'bogus' }), [], {})).toThrow(/--ipc: "bogus" is not an IPC mode/);
    expect(() => runOptionsFrom(flags({ dnsSearch: ['bad domain'] }), [], {})).toThrow('--dns-search: "bad domain" is not a DNS name');
    // One word: a space or newline would write other resolv.conf settings.
    expect(() => runOptionsFrom(flags({ dnsOption: ['ndots:1\nnameserver 1.2.3.4'] }), [], {})).toThrow(/--dns-option: [^]* is not a resolver option/);
    expect(() => runOptionsFrom(flags({ expose: ['70000'] }), [], {})).toThrow(/--expose: "70000" is not a port/);
    expect(() => runOptionsFrom(flags({ expose: ['90-80'] }), [], {})).toThrow(/--expose: "90-80" is not a port/);
  });

  it('--env-file entries come first, -e wins, a bare KEY in the file comes from the caller\'s environment', () => {
    const file = path.join(tmp, 'app.env');
    fs.writeFileSync(file, '# settings\nA=from-file\nB="two words"\nHOME_DIR=${HOME}/x\nUSER\n');
    const o = runOptionsFrom(flags({ envFile: [file], env: ['A=from-flag'] }), [], { HOME: '/root', USER: 'pi' });
    expect(o.env).toEqual(['A=from-file', 'B=two words', 'HOME_DIR=/root/x', 'USER=pi', 'A=from-flag']);
    expect(() => runOptionsFrom(flags({ envFile: [path.join(tmp, 'missing.env')] }), [], {})).toThrow(/cannot read env file .*missing\.env/);
  });
});
