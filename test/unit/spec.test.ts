import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toLinuxResources } from '../../src/cgroup/resources.js';
import { BerthError } from '../../src/errors.js';
import { hostPaths } from '../../src/host/paths.js';
import { defaultRunOptions, parseDevice, parseTmpfs, parseVolume, type RunOptions } from '../../src/runtime/options.js';
import { buildSpec, type BuildSpecInput } from '../../src/runtime/spec/build.js';
import { parseProcLimits, readHostFacts, splitDev, type HostFacts } from '../../src/runtime/spec/host.js';
import { capabilityMask, DEFAULT_CAPABILITIES } from '../../src/runtime/capabilities.js';
import { mergeArgs, mergeEnv } from '../../src/runtime/spec/process.js';
import { fixtureSeccomp } from '../helpers/seccomp-fixture.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max processes             96365                96365                processes 
Max open files            2048                 4096                 files     
Max locked memory         8388608              8388608              bytes     
Max realtime timeout      unlimited            unlimited            us        
`;

let tmp: string;
let rootfs: string;
let host: HostFacts;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-spec-'));
  rootfs = path.join(tmp, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\ni2c:x:998:app\napp:x:1000:\n');
  // A fake host: its own /proc/self/limits and status; dev/ links to the real /dev/null and /dev/zero,
  // which stand in for /dev/i2c-1 and /dev/gpiomem.
  const h = path.join(tmp, 'host');
  fs.mkdirSync(path.join(h, 'proc/self/ns'), { recursive: true });
  fs.mkdirSync(path.join(h, 'dev/bus/usb/001'), { recursive: true });
  fs.writeFileSync(path.join(h, 'proc/self/limits'), LIMITS);
  fs.writeFileSync(path.join(h, 'proc/self/status'), 'Name:\tnode\nCapBnd:\t000001fffeffffff\n');
  fs.writeFileSync(path.join(h, 'proc/self/ns/cgroup'), '');
  fs.symlinkSync('/dev/null', path.join(h, 'dev/i2c-1'));
  fs.symlinkSync('/dev/zero', path.join(h, 'dev/gpiomem'));
  fs.symlinkSync('/dev/null', path.join(h, 'dev/bus/usb/001/001'));
  fs.symlinkSync('/dev/zero', path.join(h, 'dev/bus/usb/001/002'));
  fs.writeFileSync(path.join(h, 'dev/notadevice'), '');
  host = readHostFacts(hostPaths(h));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const defaults = { memoryHighBytes: 200 << 20, memoryMaxBytes: 256 << 20, pidsLimit: 512, cpuWeight: 100 };
function input(over: Partial<RunOptions> = {}, rest: Partial<BuildSpecInput> = {}): BuildSpecInput {
  const options = { ...defaultRunOptions('web'), ...over };
  return {
    id: 'c0ffee1234567890', image: { config: { Entrypoint: ['/bin/app'], Cmd: ['--serve'], Env: ['PATH=/opt/bin:/bin', 'A=image'] } },
    options, rootfs, stateRoot: path.join(tmp, 'state'), host, resources: toLinuxResources(options, defaults), cgroupsEnforced: true, seccomp: fixtureSeccomp(tmp), ...rest,
  };
}

describe('host facts', () => {
  it('parses /proc/self/limits hard limits', () => {
    expect(parseProcLimits(LIMITS)).toEqual({
      RLIMIT_CPU: Infinity, RLIMIT_STACK: Infinity, RLIMIT_NPROC: 96365, RLIMIT_NOFILE: 4096, RLIMIT_MEMLOCK: 8388608, RLIMIT_RTTIME: Infinity,
    });
    expect(host.cgroupNamespace).toBe(true);
    expect(host.capBounding).toBe(0x1fffeffffffn);
  });
  it('splits dev_t like glibc', () => {
    expect(splitDev(0x0103n)).toEqual({ major: 1, minor: 3 });
    const major = 0x1234n, minor = 0x56789n;
    const rdev = ((major & 0xfffn) << 8n) | ((major & ~0xfffn) << 32n) | (minor & 0xffn) | ((minor & ~0xffn) << 12n);
    expect(splitDev(rdev)).toEqual({ major: 0x1234, minor: 0x56789 });
    expect(host.statDevice('/dev/i2c-1')).toMatchObject({ kind: 'c', major: 1, minor: 3 });
  });
});

describe('entrypoint/cmd (docker semantics)', () => {
  const img = { Entrypoint: ['/ep', '-x'], Cmd: ['default'] };
  it.each([
    ['image ENTRYPOINT + CMD', img, undefined, undefined, ['/ep', '-x', 'default']],
    ['run args replace CMD', img, undefined, ['a', 'b'], ['/ep', '-x', 'a', 'b']],
    ['--entrypoint drops the image CMD', img, ['/other'], undefined, ['/other']],
    ['--entrypoint with args', img, ['/other'], ['z'], ['/other', 'z']],
    ['--entrypoint "" with args', img, [], ['/bin/sh', '-c', 'x'], ['/bin/sh', '-c', 'x']],
    ['CMD only', { Cmd: ['/bin/sh'] }, undefined, undefined, ['/bin/sh']],
    ['args only', {}, undefined, ['/bin/true'], ['/bin/true']],
    ['empty args keep CMD', { Cmd: ['/bin/sh'] }, undefined, [], ['/bin/sh']],
  ])('%s', (_n, image, ep, cmd, want) => {
    expect(mergeArgs(image, ep, cmd)).toEqual(want);
  });
  it('nothing to run is invalid', () => {
    expect(() => mergeArgs({}, undefined, undefined)).toThrow(/no command/);
    expect(() => mergeArgs(img, [], undefined)).toThrow(/no command/);
  });
});

describe('env merge', () => {
  it('default PATH, HOSTNAME, image env, run env (later wins, in place), HOME', () => {
    expect(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4'], 'h1', '/root')).toEqual([
      `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, 'HOSTNAME=h1', 'A=1', 'B=3', 'C=4', 'HOME=/root',
    ]);
    expect(mergeEnv(['PATH=/x'], ['HOSTNAME=mine', 'HOME=/h'], 'h1', '/root')).toEqual(['PATH=/x', 'HOSTNAME=mine', 'HOME=/h']);
    expect(() => mergeEnv([], ['NOVALUE'], 'h', '/')).toThrow(/KEY=VALUE/);
  });
});

describe('buildSpec', () => {
  it('a default container', () => {
    const s = buildSpec(input({ env: ['A=run'] }));
    expect(s.ociVersion).toBe('1.0.2');
    expect(s.process.args).toEqual(['/bin/app', '--serve']);
    expect(s.process.env).toEqual(['PATH=/opt/bin:/bin', 'HOSTNAME=c0ffee123456', 'A=run', 'HOME=/root']);
    expect(s.process.cwd).toBe('/');
    expect(s.process.user).toEqual({ uid: 0, gid: 0 });
    expect(s.process.noNewPrivileges).toBe(true);
    expect(s.process.capabilities.bounding).toEqual([...DEFAULT_CAPABILITIES]);
    expect(s.process.capabilities.effective).toEqual([...DEFAULT_CAPABILITIES]);
    expect(s.process.capabilities.inheritable).toEqual([]);
    expect(s.process.capabilities.ambient).toEqual([]);
    expect(capabilityMask(s.process.capabilities.effective)).toBe(0xa80425fbn);
    expect(s.hostname).toBe('c0ffee123456');
    expect(s.root).toEqual({ path: rootfs, readonly: false });
    expect(s.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount', 'network', 'cgroup']);
    expect(s.linux.cgroupsPath).toBe('/berth/c0ffee1234567890');
    expect(s.linux.maskedPaths).toEqual(expect.arrayContaining(['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware', '/proc/scsi', '/proc/acpi', '/proc/interrupts']));
    expect(s.linux.readonlyPaths).toEqual(['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
    expect(s.mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm']);
    expect(s.mounts.find((m) => m.destination === '/dev/pts')?.options).toEqual(expect.arrayContaining(['newinstance', 'ptmxmode=0666']));
    expect(s.mounts.find((m) => m.destination === '/dev/shm')?.options).toContain('size=67108864');
    expect(s.mounts.find((m) => m.destination === '/sys')).toMatchObject({ type: 'sysfs', options: expect.arrayContaining(['ro']) });
    expect(s.linux.resources.memory).toEqual({ limit: 256 << 20, swap: 256 << 20 });
    expect(s.linux.resources.unified).toMatchObject({ 'memory.high': String(200 << 20), 'memory.oom.group': '1' });
    expect(s.linux.resources.devices?.[0]).toEqual({ allow: false, access: 'rwm' });
    expect(s.linux.resources.devices).toContainEqual({ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' });
    expect(s.linux.resources.devices).toContainEqual({ allow: true, type: 'c', major: 136, access: 'rwm' });
    expect(s.linux.devices).toEqual([]);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });
  it('rlimits: nofile 1024 soft, hard clamped to the host hard limit; ulimits clamped too', () => {
    const s = buildSpec(input({ ulimits: [{ type: 'RLIMIT_NPROC', soft: 1_000_000, hard: 2_000_000 }, { type: 'RLIMIT_CORE', soft: 0, hard: 1 << 30 }] }));
    expect(s.process.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 },
      { type: 'RLIMIT_NPROC', soft: 96365, hard: 96365 },
      { type: 'RLIMIT_CORE', soft: 0, hard: 1 << 30 },
    ]);
    const low = { ...host, rlimitHard: { RLIMIT_NOFILE: 512 } };
    expect(buildSpec(input({}, { host: low })).process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 512, hard: 512 }]);
    const high = { ...host, rlimitHard: { RLIMIT_NOFILE: 1048576 } };
    expect(buildSpec(input({}, { host: high })).process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 524288 }]);
  });
  it('user, workdir, image env and user from the image', () => {
    const s = buildSpec(input({ workdir: '/srv//app/' }, { image: { config: { User: 'app', Cmd: ['/bin/sh'], WorkingDir: '/ignored' } } }));
    expect(s.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [998] });
    expect(s.process.cwd).toBe('/srv/app');
    expect(s.process.env).toContain('HOME=/home/app');
    expect(buildSpec(input({ user: '1000:998' })).process.user).toEqual({ uid: 1000, gid: 998 });
    expect(buildSpec(input({}, { image: { config: { Cmd: ['x'], WorkingDir: '/data' } } })).process.cwd).toBe('/data');
    expect(() => buildSpec(input({ user: 'ghost' }))).toThrow(/unable to find user ghost/);
    expect(() => buildSpec(input({ workdir: 'rel' }))).toThrow(/absolute/);
  });
  it('host network: no net namespace, and still a fresh read-only sysfs (not a bind of the host\'s /sys and what is mounted under it)', () => {
    const s = buildSpec(input({ network: 'host' }, { host: { ...host, cgroupNamespace: false } }));
    expect(s.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount']);
    expect(s.mounts.find((m) => m.destination === '/sys')).toEqual({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
  });
  it('read-only root, tmpfs, binds and volumes (parents first)', () => {
    const data = path.join(tmp, 'data');
    fs.mkdirSync(data);
    const s = buildSpec(input({
      readOnly: true,
      tmpfs: [parseTmpfs('/run:size=8m,exec')],
      volumes: [parseVolume(`${data}:/srv/data/sub:ro`), parseVolume('cache:/srv'), parseVolume(`${data}:/dev/shm`)],
    }));
    expect(s.root.readonly).toBe(true);
    const user = s.mounts.slice(6);
    expect(user.map((m) => m.destination)).toEqual(['/run', '/srv', '/dev/shm', '/srv/data/sub']);
    expect(s.mounts.filter((m) => m.destination === '/dev/shm')).toHaveLength(1);
    expect(s.mounts.find((m) => m.destination === '/run')).toEqual({ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'size=8m', 'exec'] });
    expect(s.mounts.find((m) => m.destination === '/srv')).toEqual({ destination: '/srv', type: 'bind', source: path.join(tmp, 'state/volumes/cache/_data'), options: ['rbind', 'rprivate', 'rw'] });
    expect(s.mounts.find((m) => m.destination === '/srv/data/sub')).toEqual({ destination: '/srv/data/sub', type: 'bind', source: data, options: ['rbind', 'rprivate', 'ro'] });
  });
  it('mount errors', () => {
    const err = (() => { try { buildSpec(input({ volumes: [parseVolume('/nonexistent/berth-x:/x')] })); } catch (e) { return e as BerthError; } })();
    expect(err?.category).toBe('notFound');
    expect(err?.message).toMatch(/\/nonexistent\/berth-x does not exist/);
    expect(() => buildSpec(input({ tmpfs: [parseTmpfs('/proc')] }))).toThrow(/cannot mount over \/proc/);
    expect(() => buildSpec(input({ tmpfs: [parseTmpfs('/x')], volumes: [parseVolume('vol:/x')] }))).toThrow(/duplicate mount point \/x/);
  });
  it('devices: nodes with their numbers and cgroup rules; directories; missing → notFound', () => {
    const s = buildSpec(input({ devices: [parseDevice('/dev/i2c-1'), parseDevice('/dev/gpiomem:/dev/gpio:rw'), parseDevice('/dev/bus/usb')] }));
    const nullMode = fs.statSync('/dev/null').mode & 0o777;
    expect(s.linux.devices).toEqual([
      { path: '/dev/i2c-1', type: 'c', major: 1, minor: 3, fileMode: nullMode, uid: 0, gid: 0 },
      { path: '/dev/gpio', type: 'c', major: 1, minor: 5, fileMode: fs.statSync('/dev/zero').mode & 0o777, uid: 0, gid: 0 },
      { path: '/dev/bus/usb/001/001', type: 'c', major: 1, minor: 3, fileMode: nullMode, uid: 0, gid: 0 },
      { path: '/dev/bus/usb/001/002', type: 'c', major: 1, minor: 5, fileMode: fs.statSync('/dev/zero').mode & 0o777, uid: 0, gid: 0 },
    ]);
    expect(s.linux.resources.devices?.slice(-4)).toEqual([
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'rw' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
    ]);
    const missing = (() => { try { buildSpec(input({ devices: [parseDevice('/dev/i2c-99')] })); } catch (e) { return e as BerthError; } })();
    expect(missing).toBeInstanceOf(BerthError);
    expect(missing?.category).toBe('notFound');
    expect(missing?.message).toMatch(/\/dev\/i2c-99/);
    expect(() => buildSpec(input({ devices: [parseDevice('/dev/notadevice')] }))).toThrow(/not a device node/);
  });
  it('cgroups not enforced (hybrid host): only the device rules, cgroupsPath kept', () => {
    const s = buildSpec(input({ memory: 64 << 20, cpus: 0.5, devices: [parseDevice('/dev/i2c-1:r')] }, { cgroupsEnforced: false }));
    expect(Object.keys(s.linux.resources)).toEqual(['devices']);
    expect(s.linux.resources.devices?.at(-1)).toEqual({ allow: true, type: 'c', major: 1, minor: 3, access: 'r' });
    expect(s.linux.cgroupsPath).toBe('/berth/c0ffee1234567890');
  });
  it('drops capabilities the host bounding set lacks', () => {
    const s = buildSpec(input({}, { host: { ...host, capBounding: 0xa80425fbn & ~(1n << 13n) } }));
    expect(s.process.capabilities.bounding).not.toContain('CAP_NET_RAW');
    expect(s.process.capabilities.bounding).toHaveLength(13);
  });
  it('priority classes set oom_score_adj, always explicitly (0, never the agent\'s inherited -900); a host without CAP_SYS_RESOURCE keeps critical at 0', () => {
    const crit = { labels: { 'berth.priority': 'critical' } };
    expect(buildSpec(input(crit, { host: { ...host, capBounding: (1n << 41n) - 1n } })).process.oomScoreAdj).toBe(-500);
    expect(buildSpec(input(crit, { host: { ...host, capBounding: 0x1fffeffffffn } })).process.oomScoreAdj).toBe(0);
    expect(buildSpec(input({ labels: { 'berth.priority': 'best-effort' } }, { host: { ...host, capBounding: 0x1fffeffffffn } })).process.oomScoreAdj).toBe(1000);
    expect(buildSpec(input({})).process.oomScoreAdj).toBe(0);
  });
  it('rejects a relative rootfs and a bad id', () => {
    expect(() => buildSpec(input({}, { rootfs: 'rel' }))).toThrow(/absolute/);
    expect(() => buildSpec(input({}, { id: '../x' }))).toThrow(/invalid container id/);
  });
});
