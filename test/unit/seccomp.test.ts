import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deviceEnforcement, runtimeCommand, type OciRuntime } from '../../src/runtime/oci-runtime.js';
import { applyParity } from '../../src/runtime/spec/seccomp-parity.js';
import { convertProfile, seccompArch, validateProfile } from '../../src/runtime/spec/seccomp-profile.js';
import { SeccompProfiles } from '../../src/runtime/spec/seccomp.js';
import { BUNDLED_SECCOMP_PROFILE, BUNDLED_SECCOMP_RELATIVE, findDefaultSeccompProfile } from '../../src/runtime/seccomp-default.js';
import { kernelHasMountSetattr } from '../../src/runtime/spec/host.js';
import { maskedPaths } from '../../src/runtime/spec/mounts.js';
import { deviceRuleLine, prepareDevicesCgroup } from '../../src/cgroup/devices-v1.js';
import { DEFAULT_DEVICE_RULES } from '../../src/runtime/spec/devices.js';
import { FIXTURE_PROFILE, writeFixtureProfile } from '../helpers/seccomp-fixture.js';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-seccomp-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const profile = validateProfile(FIXTURE_PROFILE, 'fixture.json');
const x86 = { arch: seccompArch('x86_64'), kernel: '6.1.0' };
const namesOf = (f: { syscalls: Array<{ names: string[]; action: string }> }, action = 'SCMP_ACT_ALLOW') => f.syscalls.filter((s) => s.action === action).flatMap((s) => s.names);

describe('converting a Docker-format profile (moby setupSeccomp rules)', () => {
  it('maps the host architecture through archMap, arm and arm64 included', () => {
    expect(convertProfile(profile, { ...x86, caps: new Set() }).architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(convertProfile(profile, { caps: new Set(), arch: seccompArch('aarch64'), kernel: '6.1' }).architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    // 32-bit arm is nobody's main architecture in the map: the native one alone.
    expect(convertProfile(profile, { caps: new Set(), arch: seccompArch('armv7l'), kernel: '6.1' }).architectures).toEqual(['SCMP_ARCH_ARM']);
    expect(() => seccompArch('riscv64')).toThrow(/riscv64/);
  });

  it('keeps only the rules whose arch, capability and kernel conditions hold', () => {
    const plain = convertProfile(profile, { ...x86, caps: new Set(['CAP_CHOWN']) });
    expect(namesOf(plain)).toEqual(expect.arrayContaining(['read', 'arch_prctl', 'ptrace']));
    expect(namesOf(plain)).not.toContain('cacheflush');
    expect(namesOf(plain)).not.toContain('bpf');
    expect(plain.syscalls).toContainEqual({ names: ['bpf', 'perf_event_open'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 });
    expect(plain.syscalls).toContainEqual({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }] });
    expect(plain).toMatchObject({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38 });
    const admin = convertProfile(profile, { ...x86, caps: new Set(['CAP_SYS_ADMIN']) });
    expect(namesOf(admin)).toContain('bpf');
    expect(namesOf(admin, 'SCMP_ACT_ERRNO')).not.toContain('bpf');
    expect(namesOf(convertProfile(profile, { caps: new Set(), arch: seccompArch('aarch64'), kernel: '4.4.0' }))).toEqual(expect.arrayContaining(['cacheflush']));
    expect(namesOf(convertProfile(profile, { caps: new Set(), arch: seccompArch('aarch64'), kernel: '4.4.0' }))).not.toContain('ptrace');
  });

  it('refuses a malformed profile, naming the key', () => {
    expect(() => validateProfile({ defaultAction: 'SCMP_ACT_NOPE' }, '/p.json')).toThrow(/seccomp profile \/p.json: defaultAction "SCMP_ACT_NOPE" is not a seccomp action/);
    expect(() => validateProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 9, value: 1, op: 'SCMP_CMP_EQ' }] }] }, 'p')).toThrow(/syscalls\[0\]\.args\[0\]\.index must be 0…5/);
    expect(() => validateProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: 'new' } }] }, 'p')).toThrow(/includes\.minKernel must be a version/);
    expect(() => validateProfile({ defaultAction: 'SCMP_ACT_ALLOW', architectures: [], archMap: [] }, 'p')).toThrow(/architectures and archMap cannot both be given/);
  });
});

describe("berth's Docker-parity denials on the default profile", () => {
  it('keyring and io_uring always; namespaces, mounts and clone flags unless CAP_SYS_ADMIN; clone3 says ENOSYS', () => {
    const caps = new Set(['CAP_CHOWN']);
    const f = applyParity(convertProfile(profile, { ...x86, caps }), caps);
    const allowed = namesOf(f);
    for (const n of ['keyctl', 'unshare', 'mount', 'setns', 'sethostname', 'clone3']) expect(allowed, n).not.toContain(n);
    expect(f.syscalls).toContainEqual({ names: ['add_key', 'keyctl', 'request_key'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 });
    expect(f.syscalls).toContainEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    expect(f.syscalls).toContainEqual({ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
    // No syscall is named by two rules without arguments (libseccomp refuses conflicting actions).
    const unconditional = f.syscalls.filter((s) => s.args === undefined).flatMap((s) => s.names);
    expect(new Set(unconditional).size).toBe(unconditional.length);

    const admin = new Set(['CAP_SYS_ADMIN']);
    const g = applyParity(convertProfile(profile, { ...x86, caps: admin }), admin);
    expect(namesOf(g)).toEqual(expect.arrayContaining(['unshare', 'mount', 'clone', 'clone3', 'bpf']));
    expect(namesOf(g)).not.toContain('keyctl');
  });
});

describe('SeccompProfiles', () => {
  it('resolves default, a profile of its own as written, and unconfined; converts once per digest and capability set', () => {
    const profiles = new SeccompProfiles({ machine: 'x86_64', kernel: '6.1.0', defaultProfiles: [writeFixtureProfile(tmp)] });
    const a = profiles.resolve({ kind: 'default' }, ['CAP_CHOWN']);
    expect(a.summary).toMatchObject({ mode: 'filter', profile: path.join(tmp, 'seccomp.json'), digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), dockerParity: true });
    expect(namesOf(a.filter!)).not.toContain('keyctl');
    a.filter!.syscalls.length = 0; // a caller's change must not reach the cache
    expect(profiles.resolve({ kind: 'default' }, ['CAP_CHOWN']).filter!.syscalls.length).toBeGreaterThan(0);
    const own = profiles.resolve({ kind: 'profile', path: path.join(tmp, 'seccomp.json') }, ['CAP_CHOWN']);
    expect(own.summary.dockerParity).toBeUndefined();
    expect(namesOf(own.filter!)).toContain('keyctl');
    expect(profiles.resolve({ kind: 'unconfined' }, [])).toEqual({ summary: { mode: 'unconfined', reason: 'seccomp=unconfined' } });
    // A changed file is a new digest: the next container gets it.
    fs.writeFileSync(path.join(tmp, 'seccomp.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW' }));
    expect(profiles.resolve({ kind: 'default' }, ['CAP_CHOWN']).filter!.defaultAction).toBe('SCMP_ACT_ALLOW');
  });

  it('keeps conversions on disk for the next process; an unreadable entry is converted again', () => {
    const cacheDir = path.join(tmp, 'cache');
    const defaultProfiles = [writeFixtureProfile(tmp)];
    new SeccompProfiles({ machine: 'x86_64', kernel: '6.1.0', defaultProfiles, cacheDir }).resolve({ kind: 'default' }, ['CAP_CHOWN']);
    const [entry] = fs.readdirSync(cacheDir);
    expect(entry).toMatch(/^[0-9a-f]{64}\.json$/);
    // What the next process gets is what is on disk (marked here so it shows), not a new conversion.
    const file = path.join(cacheDir, entry!);
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), defaultAction: 'SCMP_ACT_LOG' }));
    const next = () => new SeccompProfiles({ machine: 'x86_64', kernel: '6.1.0', defaultProfiles, cacheDir }).resolve({ kind: 'default' }, ['CAP_CHOWN']).filter!;
    expect(next().defaultAction).toBe('SCMP_ACT_LOG');
    fs.writeFileSync(file, '{"trunc');
    expect(next().defaultAction).toBe('SCMP_ACT_ERRNO');
    // Another capability set or kernel is another entry.
    new SeccompProfiles({ machine: 'x86_64', kernel: '4.4.0', defaultProfiles, cacheDir }).resolve({ kind: 'default' }, ['CAP_CHOWN']);
    expect(fs.readdirSync(cacheDir)).toHaveLength(2);
  });

  it('without the system profile, the bundled copy is the default (the system one wins when both exist); the summary names which', () => {
    const system = path.join(tmp, 'system', 'seccomp.json');
    const bundled = path.join(tmp, 'bundle', 'seccomp.json');
    fs.mkdirSync(path.dirname(bundled));
    fs.writeFileSync(bundled, JSON.stringify(FIXTURE_PROFILE));
    const profiles = new SeccompProfiles({ machine: 'x86_64', kernel: '6.1.0', defaultProfiles: [system, bundled] });
    expect(profiles.resolve({ kind: 'default' }, ['CAP_CHOWN']).summary).toMatchObject({ mode: 'filter', profile: bundled, dockerParity: true });
    // The package installed while the agent runs: the next container takes the system's.
    fs.mkdirSync(path.dirname(system));
    writeFixtureProfile(path.dirname(system));
    expect(profiles.resolve({ kind: 'default' }, ['CAP_CHOWN']).summary.profile).toBe(system);
    expect(findDefaultSeccompProfile([path.join(tmp, 'absent.json'), bundled])).toBe(bundled);
    expect(findDefaultSeccompProfile([path.join(tmp, 'absent.json')])).toBeUndefined();
    // The bundle's copy is where src/flash/bundle.ts puts it, from the package root.
    expect(BUNDLED_SECCOMP_PROFILE).toBe(path.resolve(import.meta.dirname, '../..', BUNDLED_SECCOMP_RELATIVE));
  });

  it('a missing default profile stops the container with the package to install; a missing own profile is notFound', () => {
    const profiles = new SeccompProfiles({ machine: 'x86_64', kernel: '6.1.0', defaultProfiles: [path.join(tmp, 'absent.json')] });
    expect(() => profiles.resolve({ kind: 'default' }, [])).toThrow(expect.objectContaining({ category: 'host', hint: expect.stringMatching(/golang-github-containers-common/) }));
    expect(() => profiles.resolve({ kind: 'profile', path: '/nonexistent/p.json' }, [])).toThrow(expect.objectContaining({ category: 'notFound', message: expect.stringMatching(/seccomp=\/nonexistent\/p.json: no such file/) }));
    fs.writeFileSync(path.join(tmp, 'bad.json'), '{');
    expect(() => profiles.resolve({ kind: 'profile', path: path.join(tmp, 'bad.json') }, [])).toThrow(/is not valid JSON/);
  });
});

describe('device isolation and the other host facts', () => {
  const layout = (mode: 'unified' | 'hybrid', v1: Array<{ mountPoint: string; controllers: string[] }>) => ({ mode, v2Controllers: [], v1 });
  it('who enforces device rules: eBPF on v2, runc or berth on v1, nobody without a devices controller', () => {
    expect(deviceEnforcement(layout('unified', []), 'crun').by).toBe('ebpf');
    const hybrid = layout('hybrid', [{ mountPoint: '/sys/fs/cgroup/devices', controllers: ['devices'] }]);
    expect(deviceEnforcement(hybrid, 'runc').by).toBe('runtime-v1');
    expect(deviceEnforcement(hybrid, 'crun')).toMatchObject({ by: 'berth-v1', hierarchy: '/sys/fs/cgroup/devices' });
    expect(deviceEnforcement(layout('hybrid', [{ mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'] }]), 'runc')).toMatchObject({ by: 'none', note: expect.stringMatching(/only privileged containers may start/) });
  });

  it('exec under berth-kept rules joins the devices cgroup first', () => {
    const rt = { name: 'crun', path: '/usr/bin/crun', globalArgs: ['--root=/run/berth/crun'], devices: { by: 'berth-v1', hierarchy: '/sys/fs/cgroup/devices', note: '' } } as unknown as OciRuntime;
    expect(runtimeCommand(rt, 'abc', ['exec', 'abc', 'true'])).toEqual(['/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', '/sys/fs/cgroup/devices/berth/abc/cgroup.procs', '/usr/bin/crun', '--root=/run/berth/crun', 'exec', 'abc', 'true']]);
    expect(runtimeCommand({ ...rt, devices: { by: 'ebpf', note: '' } }, 'abc', ['exec', 'abc', 'true'])).toEqual(['/usr/bin/crun', ['--root=/run/berth/crun', 'exec', 'abc', 'true']]);
  });

  it('v1 rule lines, written in order into the cgroup directory', () => {
    expect(DEFAULT_DEVICE_RULES.slice(0, 4).map(deviceRuleLine)).toEqual(['a *:* rwm', 'c *:* m', 'b *:* m', 'c 1:3 rwm']);
    // A plain directory stands in for the cgroup: each write replaces the file, so the last rule of each kind remains.
    prepareDevicesCgroup(path.join(tmp, 'cg'), DEFAULT_DEVICE_RULES);
    expect(fs.readFileSync(path.join(tmp, 'cg/devices.deny'), 'utf8')).toBe('a *:* rwm');
    expect(fs.readFileSync(path.join(tmp, 'cg/devices.allow'), 'utf8')).toBe('c 136:* rwm');
  });

  it('rro needs Linux 5.12; thermal_throttle is masked per CPU that has it', () => {
    expect([kernelHasMountSetattr('5.11.22'), kernelHasMountSetattr('5.12.0-rpi'), kernelHasMountSetattr('6.1.0'), kernelHasMountSetattr(undefined)]).toEqual([false, true, true, false]);
    const tree: Record<string, { kind: 'dir'; entries: string[] }> = {
      '/sys/devices/system/cpu': { kind: 'dir', entries: ['cpu0', 'cpu1', 'cpufreq', 'online'] },
      '/sys/devices/system/cpu/cpu0/thermal_throttle': { kind: 'dir', entries: [] },
    };
    expect(maskedPaths({ statDevice: (p) => tree[p] })).toEqual(expect.arrayContaining(['/proc/interrupts', '/sys/devices/system/cpu/cpu0/thermal_throttle']));
    expect(maskedPaths({ statDevice: (p) => tree[p] })).not.toContain('/sys/devices/system/cpu/cpu1/thermal_throttle');
  });
});
