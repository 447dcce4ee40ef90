import { BerthError } from '../../errors.js';
import { kernelAtLeast, parseKernelRelease } from './host.js';
import type { OciSeccomp, OciSeccompArg, OciSeccompSyscall } from './types.js';

/**
 * Docker's (and podman's) seccomp profile format, as in /usr/share/containers/seccomp.json, and its
 * conversion into the OCI runtime spec's `linux.seccomp` for one container. The conversion follows
 * moby's profiles/seccomp setupSeccomp: rules whose `includes`/`excludes` conditions (capabilities,
 * architectures, minimum kernel) do not hold for this container on this host are dropped; the
 * `archMap` entry of the host's architecture becomes `architectures`.
 */

/** Conditions on a rule: all of `caps` held, the host's arch in `arches`, the kernel at least `minKernel`. */
export interface ProfileFilter {
  readonly caps?: readonly string[];
  readonly arches?: readonly string[];
  readonly minKernel?: string;
}

export interface ProfileSyscall {
  readonly name?: string;
  readonly names?: readonly string[];
  readonly action: string;
  readonly errnoRet?: number;
  readonly args?: readonly OciSeccompArg[] | null;
  readonly includes?: ProfileFilter;
  readonly excludes?: ProfileFilter;
}

export interface SeccompProfile {
  readonly defaultAction: string;
  readonly defaultErrnoRet?: number;
  readonly architectures?: readonly string[];
  readonly archMap?: ReadonlyArray<{ readonly architecture: string; readonly subArchitectures?: readonly string[] | null }>;
  readonly syscalls?: readonly ProfileSyscall[];
}

export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
] as const;
const OPS = new Set(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);

/** The host's architecture in the two vocabularies a profile uses: libseccomp's and Go's (conditions). */
export interface SeccompArch {
  readonly scmp: string;
  readonly go: string;
}

/**
 * `uname -m` → the profile's names. The kernel's machine, not Node's build: a 32-bit Raspberry Pi OS on
 * a 64-bit kernel runs arm and arm64 code alike, and aarch64's archMap entry lists ARM as a sub-arch.
 */
export function seccompArch(machine: string): SeccompArch {
  if (machine === 'x86_64') return { scmp: 'SCMP_ARCH_X86_64', go: 'amd64' };
  if (machine === 'aarch64' || machine === 'arm64') return { scmp: 'SCMP_ARCH_AARCH64', go: 'arm64' };
  if (/^arm/.test(machine)) return { scmp: 'SCMP_ARCH_ARM', go: 'arm' };
  if (/^i[3-6]86$/.test(machine)) return { scmp: 'SCMP_ARCH_X86', go: '386' };
  throw new BerthError('host', `seccomp: machine architecture "${machine}" is not one berth knows (x86_64, aarch64, arm*, i386)`);
}

/** Checks a parsed profile's shape, naming the key at fault; `where` names the file. */
export function validateProfile(value: unknown, where: string): SeccompProfile {
  const bad = (key: string, why: string): never => {
    throw new BerthError('invalid', `seccomp profile ${where}: ${key} ${why}`);
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const strings = (v: unknown, key: string): void => {
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) bad(key, 'must be a list of strings');
  };
  const action = (v: unknown, key: string): void => {
    if (!(SECCOMP_ACTIONS as readonly unknown[]).includes(v)) bad(key, `"${String(v)}" is not a seccomp action (${SECCOMP_ACTIONS.join(', ')})`);
  };
  const errno = (v: unknown, key: string): void => {
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0 && (v as number) < 4096)) bad(key, 'must be an errno number (0…4095)');
  };
  if (!isObj(value)) return bad('the document', 'is not a JSON object');
  action(value.defaultAction, 'defaultAction');
  errno(value.defaultErrnoRet, 'defaultErrnoRet');
  strings(value.architectures, 'architectures');
  if (value.architectures !== undefined && value.archMap !== undefined) bad('architectures', 'and archMap cannot both be given');
  if (value.archMap !== undefined) {
    if (!Array.isArray(value.archMap)) bad('archMap', 'must be a list');
    (value.archMap as unknown[]).forEach((a, i) => {
      if (!isObj(a) || typeof a.architecture !== 'string') bad(`archMap[${i}].architecture`, 'must be a string');
      strings((a as Record<string, unknown>).subArchitectures, `archMap[${i}].subArchitectures`);
    });
  }
  if (value.syscalls !== undefined && !Array.isArray(value.syscalls)) bad('syscalls', 'must be a list');
  ((value.syscalls ?? []) as unknown[]).forEach((s, i) => {
    const k = `syscalls[${i}]`;
    if (!isObj(s)) return bad(k, 'must be an object');
    if (s.name !== undefined && s.names !== undefined) bad(k, 'has both name and names');
    if (s.name !== undefined && typeof s.name !== 'string') bad(`${k}.name`, 'must be a string');
    strings(s.names, `${k}.names`);
    action(s.action, `${k}.action`);
    errno(s.errnoRet, `${k}.errnoRet`);
    if (s.args !== undefined && s.args !== null) {
      if (!Array.isArray(s.args)) bad(`${k}.args`, 'must be a list');
      (s.args as unknown[]).forEach((a, j) => {
        if (!isObj(a) || !Number.isInteger(a.index) || (a.index as number) < 0 || (a.index as number) > 5) bad(`${k}.args[${j}].index`, 'must be 0…5');
        const arg = a as Record<string, unknown>;
        if (!Number.isSafeInteger(arg.value) || (arg.valueTwo !== undefined && !Number.isSafeInteger(arg.valueTwo))) bad(`${k}.args[${j}].value`, 'must be an integer');
        if (!OPS.has(arg.op as string)) bad(`${k}.args[${j}].op`, `"${String(arg.op)}" is not a comparison (${[...OPS].join(', ')})`);
      });
    }
    for (const f of ['includes', 'excludes'] as const) {
      if (s[f] === undefined) continue;
      if (!isObj(s[f])) bad(`${k}.${f}`, 'must be an object');
      const filter = s[f] as Record<string, unknown>;
      strings(filter.caps, `${k}.${f}.caps`);
      strings(filter.arches, `${k}.${f}.arches`);
      if (filter.minKernel !== undefined && (typeof filter.minKernel !== 'string' || parseKernelRelease(filter.minKernel) === undefined)) bad(`${k}.${f}.minKernel`, 'must be a version like "4.8"');
    }
  });
  return value as unknown as SeccompProfile;
}


/** What a profile is converted for: the container's capabilities, the host's arch and kernel release. */
export interface ConvertTarget {
  readonly caps: ReadonlySet<string>;
  readonly arch: SeccompArch;
  readonly kernel: string;
}

/** Whether a rule applies: every `includes` condition holds and no `excludes` condition does (moby's rules). */
function applies(s: ProfileSyscall, t: ConvertTarget): boolean {
  const inc = s.includes;
  if (inc?.arches && inc.arches.length > 0 && !inc.arches.includes(t.arch.go)) return false;
  if (inc?.caps && !inc.caps.every((c) => t.caps.has(c))) return false;
  if (inc?.minKernel !== undefined && !kernelAtLeast(t.kernel, inc.minKernel)) return false;
  const exc = s.excludes;
  if (exc?.arches?.includes(t.arch.go)) return false;
  if (exc?.caps?.some((c) => t.caps.has(c))) return false;
  if (exc?.minKernel !== undefined && kernelAtLeast(t.kernel, exc.minKernel)) return false;
  return true;
}

/** The OCI `linux.seccomp` for one container from a validated profile. */
export function convertProfile(p: SeccompProfile, t: ConvertTarget): OciSeccomp {
  const mapped = (p.archMap ?? []).filter((a) => a.architecture === t.arch.scmp).flatMap((a) => [a.architecture, ...(a.subArchitectures ?? [])]);
  const architectures = mapped.length > 0 ? mapped : p.architectures !== undefined && p.architectures.length > 0 ? [...p.architectures] : [t.arch.scmp];
  const syscalls: OciSeccompSyscall[] = [];
  for (const s of p.syscalls ?? []) {
    if (!applies(s, t)) continue;
    const names = s.names !== undefined ? [...s.names] : s.name !== undefined ? [s.name] : [];
    if (names.length === 0) continue;
    syscalls.push({
      names, action: s.action,
      ...(s.errnoRet !== undefined && { errnoRet: s.errnoRet }),
      ...(s.args && s.args.length > 0 && { args: s.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op })) }),
    });
  }
  return { defaultAction: p.defaultAction, ...(p.defaultErrnoRet !== undefined && { defaultErrnoRet: p.defaultErrnoRet }), architectures: [...new Set(architectures)], syscalls };
}
