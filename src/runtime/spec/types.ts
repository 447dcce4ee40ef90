import type { LinuxResources } from '../../cgroup/resources.js';

/** The parts of an OCI runtime-spec 1.0.2 `config.json` berth writes. */

export const OCI_VERSION = '1.0.2';

export interface OciUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

export interface OciRlimit {
  type: string;
  hard: number;
  soft: number;
}

export interface OciProcess {
  terminal: boolean;
  /** With `terminal`: the size the runtime gives the pty before the process starts (no resize race). */
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  rlimits: OciRlimit[];
  noNewPrivileges: boolean;
  /** Always set: a container must not inherit the agent's own score (-900 under the shipped unit). */
  oomScoreAdj: number;
  /** `--security-opt apparmor=PROFILE`, only on a host with AppArmor. */
  apparmorProfile?: string;
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciLinuxDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

export type NamespaceType = 'pid' | 'network' | 'ipc' | 'uts' | 'mount' | 'cgroup' | 'user';

export interface OciLinux {
  namespaces: Array<{ type: NamespaceType; path?: string }>;
  devices: OciLinuxDevice[];
  resources: LinuxResources;
  cgroupsPath?: string;
  maskedPaths: string[];
  readonlyPaths: string[];
  sysctl?: Record<string, string>;
  seccomp?: OciSeccomp;
}

/** One argument condition of a seccomp rule (libseccomp's comparison on syscall argument `index`). */
export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface OciSeccompSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

/** `linux.seccomp` as runc and crun read it. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: OciSeccompSyscall[];
}

export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname: string;
  /** runtime-spec 1.1's NIS domain name; runc and crun set it in the UTS namespace. */
  domainname?: string;
  mounts: OciMount[];
  linux: OciLinux;
  annotations?: Record<string, string>;
}
