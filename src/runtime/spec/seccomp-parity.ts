import type { OciSeccomp, OciSeccompSyscall } from './types.js';

/**
 * What berth's default filter denies on top of podman's profile, so that a container gets Docker's
 * (moby 25+) answer to each of these. podman's profile is written for containers in a user namespace
 * and allows them unconditionally; berth's containers run as real root, where they are the paths of
 * most container escapes:
 * - the kernel keyring is not namespaced: keyctl/add_key/request_key would reach host root's keys;
 * - io_uring has been a steady source of kernel exploits (Docker 25 dropped it from its allow list);
 * - new namespaces and mounts (`unshare -U -r` hands a process CAP_SYS_ADMIN over fresh namespaces)
 *   only with CAP_SYS_ADMIN, as Docker; perf_event_open also with CAP_PERFMON, bpf with CAP_BPF,
 *   syslog with CAP_SYSLOG;
 * - clone may not ask for new namespaces without CAP_SYS_ADMIN, and clone3 (whose flags live in
 *   memory, out of seccomp's reach) says ENOSYS so that libc falls back to clone.
 * Only the default profile gets these; a profile named with `--security-opt seccomp=PATH` is taken as
 * written, as Docker does.
 */
interface Restriction {
  readonly names: readonly string[];
  /** Capabilities any one of which lifts the restriction; none = always applies. */
  readonly unlessAnyCap?: readonly string[];
  /** The rules that replace every rule naming these syscalls. */
  readonly rules: readonly OciSeccompSyscall[];
}

const EPERM = 1;
const ENOSYS = 38;
/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

const deny = (names: readonly string[], errnoRet = EPERM): OciSeccompSyscall => ({ names: [...names], action: 'SCMP_ACT_ERRNO', errnoRet });

const KEYRING = ['add_key', 'keyctl', 'request_key'];
const IO_URING = ['io_uring_enter', 'io_uring_register', 'io_uring_setup'];
const SYS_ADMIN_ONLY = [
  'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie', 'mount', 'mount_setattr', 'move_mount', 'open_tree',
  'quotactl', 'quotactl_fd', 'setdomainname', 'sethostname', 'setns', 'umount', 'umount2', 'unshare',
];

export const DOCKER_PARITY: readonly Restriction[] = [
  { names: KEYRING, rules: [deny(KEYRING)] },
  { names: IO_URING, rules: [deny(IO_URING)] },
  { names: SYS_ADMIN_ONLY, unlessAnyCap: ['CAP_SYS_ADMIN'], rules: [deny(SYS_ADMIN_ONLY)] },
  { names: ['perf_event_open'], unlessAnyCap: ['CAP_SYS_ADMIN', 'CAP_PERFMON'], rules: [deny(['perf_event_open'])] },
  { names: ['bpf'], unlessAnyCap: ['CAP_SYS_ADMIN', 'CAP_BPF'], rules: [deny(['bpf'])] },
  { names: ['syslog'], unlessAnyCap: ['CAP_SYS_ADMIN', 'CAP_SYSLOG'], rules: [deny(['syslog'])] },
  {
    names: ['clone'], unlessAnyCap: ['CAP_SYS_ADMIN'],
    // Allowed only when no namespace flag is set; anything else falls to the default action.
    rules: [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }],
  },
  { names: ['clone3'], unlessAnyCap: ['CAP_SYS_ADMIN'], rules: [deny(['clone3'], ENOSYS)] },
];

/**
 * `filter` with the restrictions that apply to a container holding `caps`: every rule's mention of a
 * restricted syscall is dropped (so no two rules disagree about it, which libseccomp refuses) and the
 * restriction's own rules are appended.
 */
export function applyParity(filter: OciSeccomp, caps: ReadonlySet<string>, restrictions: readonly Restriction[] = DOCKER_PARITY): OciSeccomp {
  const active = restrictions.filter((r) => !(r.unlessAnyCap ?? []).some((c) => caps.has(c)));
  const restricted = new Set(active.flatMap((r) => r.names));
  const kept = filter.syscalls
    .map((s) => ({ ...s, names: s.names.filter((n) => !restricted.has(n)) }))
    .filter((s) => s.names.length > 0);
  return { ...filter, syscalls: [...kept, ...active.flatMap((r) => r.rules.map((rule) => ({ ...rule, names: [...rule.names] })))] };
}
