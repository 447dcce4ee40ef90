// A small profile in Docker's (podman's) seccomp format with one rule of each kind the conversion has to
// judge: unconditional, by capability (includes/excludes), by architecture, by kernel version, with
// argument conditions and an errnoRet. Unit tests write it to their temp dir as the "default" profile.
import fs from 'node:fs';
import path from 'node:path';
import { SeccompProfiles } from '../../src/runtime/spec/seccomp.js';

export const FIXTURE_PROFILE = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 38,
  archMap: [
    { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
    { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
  ],
  syscalls: [
    { names: ['read', 'write', 'keyctl', 'unshare', 'mount', 'clone', 'clone3', 'setns', 'sethostname'], action: 'SCMP_ACT_ALLOW' },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }] },
    { names: ['arm_fadvise64_64', 'cacheflush'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm', 'arm64'] } },
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
    { names: ['bpf', 'perf_event_open'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['bpf', 'perf_event_open'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
    { names: ['userfaultfd'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
  ],
};

/** Writes the fixture as `<dir>/seccomp.json` and returns its path. */
export function writeFixtureProfile(dir: string): string {
  const file = path.join(dir, 'seccomp.json');
  fs.writeFileSync(file, JSON.stringify(FIXTURE_PROFILE));
  return file;
}

/** Profiles for an x86_64 host running Linux 6.1, with the fixture as the default profile. */
export function fixtureSeccomp(dir: string): SeccompProfiles {
  return new SeccompProfiles({ machine: 'x86_64', kernel: '6.1.0-18-amd64', defaultProfiles: [writeFixtureProfile(dir)] });
}
