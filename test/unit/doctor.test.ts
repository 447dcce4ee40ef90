import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runDoctor, type CheckResult, type DoctorReport } from '../../src/doctor/index.js';
import { fixtureHost, variantHost } from '../helpers/host-tree.js';
import { writeFixtureProfile } from '../helpers/seccomp-fixture.js';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/** A PATH holding only the named executables, as small real shell scripts that print a version. */
function pathWith(runtimes: Record<string, string | null>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-path-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [name, version] of Object.entries(runtimes)) {
    fs.writeFileSync(path.join(dir, name), version === null ? '#!/bin/sh\nexit 1\n' : `#!/bin/sh\necho "${version}"\n`, { mode: 0o755 });
  }
  return dir;
}

const check = (r: DoctorReport, id: string): CheckResult => {
  const c = r.checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id}`);
  return c;
};
/** The fixture seccomp profile, written once to a temp dir: doctor reads no package file of the test machine. */
const seccompDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-doctor-seccomp-'));
const seccompProfile = writeFixtureProfile(seccompDir);
afterAll(() => fs.rmSync(seccompDir, { recursive: true, force: true }));
const doctor = (host: ReturnType<typeof fixtureHost>, searchPath = pathWith({ crun: 'crun version 1.8.1' }), profile = seccompProfile) =>
  runDoctor({ host, root: os.tmpdir(), searchPath, seccompProfiles: [profile] });

describe('berth doctor on how containers are confined', () => {
  it('device isolation: crun on a hybrid host without a v1 devices controller cannot enforce device rules and fails; on cgroup v2 the runtime does', () => {
    const hybrid = check(doctor(fixtureHost('hybrid-amd64')), 'devices');
    expect(hybrid).toMatchObject({ status: 'fail', detail: expect.stringMatching(/crun: no cgroup devices controller/), fix: expect.stringMatching(/-o devices/) });
    expect(check(doctor(fixtureHost('rpi-zero-2-w')), 'devices')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/cgroup v2 device program/) });
  });

  it('the default seccomp profile: present and valid, or a failure naming the package', () => {
    expect(check(doctor(fixtureHost('rpi-zero-2-w')), 'seccomp')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/8 rules, default SCMP_ACT_ERRNO/) });
    const missing = check(doctor(fixtureHost('rpi-zero-2-w'), undefined, path.join(seccompDir, 'absent.json')), 'seccomp');
    expect(missing).toMatchObject({ status: 'fail', fix: 'apt-get install golang-github-containers-common' });
    // No system profile, a later candidate (the agent bundle's copy on a card made by berth flash) present: ok, and says which file.
    const second = runDoctor({ host: fixtureHost('rpi-zero-2-w'), root: os.tmpdir(), searchPath: pathWith({ crun: 'crun version 1.8.1' }), seccompProfiles: [path.join(seccompDir, 'absent.json'), seccompProfile] });
    expect(check(second, 'seccomp')).toMatchObject({ status: 'ok', detail: expect.stringMatching(new RegExp(`^${seccompProfile}, given: 8 rules`)) });
    const none = check(doctor(fixtureHost('rpi-zero-2-w'), undefined, path.join(seccompDir, 'absent.json')), 'seccomp');
    expect(none.detail).toMatch(/^none of .*absent\.json exists/);
  });

  it('recursively read-only volumes need Linux 5.12', () => {
    expect(check(doctor(fixtureHost('rpi-zero-2-w')), 'rro')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/kernel 6\.6\.51/) });
    const v = variantHost('rpi-zero-2-w', { 'proc/sys/kernel/osrelease': '5.10.103-v7+\n' });
    cleanups.push(v.cleanup);
    expect(check(doctor(v.host), 'rro')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/read-only at its top mount only/) });
  });
});

describe('berth doctor on fixture hosts', () => {
  it('names a hybrid cgroup layout, says limits are not enforced, and fails', () => {
    const r = doctor(fixtureHost('hybrid-amd64'));
    const cg = check(r, 'cgroup');
    expect(cg.status).toBe('fail');
    expect(cg.detail).toMatch(/hybrid cgroup layout/);
    expect(cg.detail).toMatch(/memory/);
    expect(cg.detail).toMatch(/cannot enforce memory, CPU or pids limits/);
    expect(cg.fix).toMatch(/systemd.unified_cgroup_hierarchy=1/);
    expect(check(r, 'controllers').fix).toMatch(/bound to cgroup v1/);
    expect(r.ok).toBe(false);
  });

  it('on a Zero W without the memory controller, gives the exact cmdline.txt line to add', () => {
    const r = doctor(fixtureHost('rpi-zero-w'));
    expect(check(r, 'cgroup').status).toBe('ok');
    const c = check(r, 'controllers');
    expect(c.status).toBe('fail');
    expect(c.detail).toMatch(/missing memory/);
    expect(c.fix).toBe('add "cgroup_enable=memory" to /boot/firmware/cmdline.txt (append to its single line, separated by a space), then reboot');
    expect(r.ok).toBe(false);
  });

  it('uses /boot/cmdline.txt on a pre-Bookworm Pi where /boot/firmware does not exist', () => {
    const v = variantHost('rpi-zero-w', { 'boot/firmware': null, 'boot/cmdline.txt': 'console=tty1 root=/dev/mmcblk0p2\n' });
    cleanups.push(v.cleanup);
    expect(check(doctor(v.host), 'controllers').fix).toMatch(/to \/boot\/cmdline.txt/);
  });

  it('reports under-voltage from the Pi firmware as a warning with the cause', () => {
    const p = check(doctor(fixtureHost('rpi-zero-w')), 'power');
    expect(p).toMatchObject({ status: 'warn', detail: 'now: under-voltage, throttled' });
    expect(p.fix).toMatch(/power supply/);
  });

  it('passes a well-set-up Zero 2 W (warnings allowed)', () => {
    const r = doctor(fixtureHost('rpi-zero-2-w'));
    expect(r.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(r.ok).toBe(true);
    expect(check(r, 'binfmt')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/not needed/) });
    expect(r.board).toEqual({ profile: 'rpi-zero-2-w', model: 'Raspberry Pi Zero 2 W Rev 1.0' });
  });

  it('fails without an OCI runtime, warns with runc only, and notices a runtime that does not run', () => {
    const host = fixtureHost('rpi-zero-2-w');
    expect(check(doctor(host, pathWith({})), 'runtime')).toMatchObject({ status: 'fail', fix: 'apt-get install crun' });
    expect(check(doctor(host, pathWith({ runc: 'runc version 1.1.5' })), 'runtime')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/crun is preferred/) });
    expect(check(doctor(host, pathWith({ crun: null })), 'runtime')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/not working/) });
  });

  it('asks for the F flag on binfmt handlers of foreign platforms', () => {
    const v = variantHost('hybrid-amd64', {
      'proc/sys/fs/binfmt_misc/status': 'enabled\n',
      'proc/sys/fs/binfmt_misc/qemu-aarch64': 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\n',
      'proc/sys/fs/binfmt_misc/qemu-arm': 'enabled\ninterpreter /usr/libexec/qemu-binfmt/arm-binfmt-P\nflags: P\n',
    });
    cleanups.push(v.cleanup);
    const b = check(doctor(v.host), 'binfmt');
    expect(b.status).toBe('warn');
    expect(b.detail).toBe('foreign images will not run: arm: qemu-arm lacks the F (fix-binary) flag');
  });

  it('explains the small-RAM policy on a Zero 2 W: budget, PSI, freezer, and swap on the SD card', () => {
    const r = doctor(fixtureHost('rpi-zero-2-w'));
    expect(check(r, 'budget')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^containers get 271 MiB together \(415 MiB RAM − 144 MiB reserved/) });
    expect(check(r, 'psi').status).toBe('ok');
    expect(check(r, 'freezer')).toMatchObject({ status: 'ok', detail: expect.stringMatching(/6\.6\.51/) });
    const swap = check(r, 'swap');
    expect(swap).toMatchObject({ status: 'warn', detail: expect.stringMatching(/\/var\/swap \(512 MiB\)/) });
    expect(swap.fix).toMatch(/dphys-swapfile swapoff/);
  });

  it('gives the cmdline.txt change for PSI on a Pi without it, and removes psi=0 where it is set', () => {
    const psi = check(doctor(fixtureHost('rpi-zero-w')), 'psi');
    expect(psi.status).toBe('warn');
    expect(psi.fix).toBe('add "psi=1" to /boot/firmware/cmdline.txt (append to its single line, separated by a space), then reboot (kernels built with CONFIG_PSI_DEFAULT_DISABLED)');
    const v = variantHost('rpi-zero-2-w', { 'proc/pressure': null, 'proc/cmdline': 'console=tty1 psi=0 cgroup_enable=memory\n' });
    cleanups.push(v.cleanup);
    expect(check(doctor(v.host), 'psi').fix).toMatch(/remove "psi=0"/);
  });

  it('warns that an old kernel has no freezer', () => {
    const v = variantHost('rpi-zero-2-w', { 'proc/sys/kernel/osrelease': '4.14.98-v7+\n' });
    cleanups.push(v.cleanup);
    expect(check(doctor(v.host), 'freezer')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/predates the cgroup v2 freezer \(5.2\) and memory.oom.group/) });
  });

  it('reports a board it cannot detect as a failed check instead of crashing', () => {
    const v = variantHost('rpi-zero-2-w', { 'proc/cpuinfo': 'garbage' });
    cleanups.push(v.cleanup);
    const r = doctor(v.host);
    expect(check(r, 'board')).toMatchObject({ status: 'fail', detail: expect.stringMatching(/cpuinfo/) });
    expect(r.checks.length).toBeGreaterThan(5);
  });
});
