import path from 'node:path';
import { BerthError } from '../../errors.js';
import { PRIORITY_POLICIES, priorityOf } from '../../cgroup/priority.js';
import type { LinuxResources } from '../../cgroup/resources.js';
import type { RunOptions } from '../options.js';
import { resolveCapabilities } from '../capabilities.js';
import { DEFAULT_DEVICE_RULES, hostDeviceNodes, resolveDevices } from './devices.js';
import type { HostFacts } from './host.js';
import { buildMounts, maskedPaths, READONLY_PATHS } from './mounts.js';
import { buildRlimits, mergeArgs, mergeEnv, type ImageProcessConfig } from './process.js';
import type { SeccompChoice, SeccompResult, SeccompSource } from './seccomp.js';
import { OCI_VERSION, type NamespaceType, type OciMount, type OciSpec } from './types.js';
import { resolveUser } from './user.js';

/** Bit of CAP_SYS_RESOURCE (24) in a capability set. */
const CAP_SYS_RESOURCE = 1n << 24n;

export interface BuildSpecInput {
  /** The container id (runtime id and cgroup leaf). */
  readonly id: string;
  /** The image config (only `config` is read: User, Env, Entrypoint, Cmd, WorkingDir). */
  readonly image: { readonly config?: ImageProcessConfig };
  readonly options: RunOptions;
  /** Absolute path of the container's root filesystem (the mounted overlay or the snapshot). */
  readonly rootfs: string;
  /** Defaults to `options.hostname`, then the first 12 characters of the id (Docker's). */
  readonly hostname?: string;
  /** berth's state root: named volumes live in `<stateRoot>/volumes/<name>/_data`. */
  readonly stateRoot: string;
  readonly host: HostFacts;
  /** From `toLinuxResources`. */
  readonly resources: LinuxResources;
  /** Defaults to `/berth/<id>`. */
  readonly cgroupsPath?: string;
  /**
   * True on a cgroup v2 (unified) host: the resources go into the spec. False on a hybrid or v1 host:
   * only the device rules do (runc enforces them through the v1 devices controller; crun, run with
   * `--cgroup-manager=disabled`, ignores them, so berth writes them into a v1 devices cgroup it starts
   * crun in: runtime/devices-enforce.ts), because runc refuses `unified` on v1 and crun refuses
   * hybrid hosts altogether. `cgroupsPath` is kept either way: runc then places the container in
   * `/berth/<id>` in every v1 hierarchy (so kill/delete find all its processes), crun ignores it.
   */
  readonly cgroupsEnforced: boolean;
  /** Converts seccomp profiles for this host (SeccompProfiles; one per engine, so conversions are cached). */
  readonly seccomp: SeccompSource;
  /** Check that bind-mount sources exist (default true). */
  readonly checkMountSources?: boolean;
  /** A static init binary on the host (tini-static), required when `options.init`: see runtime/init.ts. */
  readonly initPath?: string;
  /** A bridged container's network namespace (made before the runtime runs) and its /etc files (src/network/container.ts). */
  readonly network?: { readonly namespacePath: string; readonly mounts: ReadonlyArray<{ readonly destination: string; readonly source: string }> };
}

/** The spec annotation holding the seccomp summary (SeccompSummary as JSON) that `berth inspect` shows. */
export const SECCOMP_ANNOTATION = 'org.berth.seccomp';

/** Where `--init`'s binary appears in the container, as Docker's. */
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';

/**
 * The OCI runtime-spec 1.0.2 `config.json` for a container, with Docker's semantics (see the helpers
 * for each part). Reads only: the rootfs's /etc/passwd and /etc/group, and host facts through `host`.
 */
export function buildSpec(input: BuildSpecInput): OciSpec {
  const { options: o, image } = input;
  if (!path.isAbsolute(input.rootfs)) throw new BerthError('invalid', `rootfs path must be absolute: ${input.rootfs}`);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(input.id)) throw new BerthError('invalid', `invalid container id "${input.id}"`);
  const cfg = image.config;
  const hostname = input.hostname ?? o.hostname ?? input.id.slice(0, 12);

  const user = resolveUser(input.rootfs, o.user ?? cfg?.User ?? '', o.groupAdd);
  const cwd = o.workdir ?? (cfg?.WorkingDir ? cfg.WorkingDir : '/');
  if (!cwd.startsWith('/')) throw new BerthError('invalid', `working directory "${cwd}" must be absolute`);

  // --privileged: every host device at its host path and an allow-all device cgroup (Docker's); the
  // --devices named as well keep their own container paths.
  const { nodes: userNodes, rules } = resolveDevices(o.devices, input.host);
  const nodes = o.privileged ? [...hostDeviceNodes(input.host).filter((n) => !userNodes.some((u) => u.path === n.path)), ...userNodes] : userNodes;
  const deviceRules = o.privileged ? [{ allow: true, access: 'rwm' }] : [...DEFAULT_DEVICE_RULES, ...rules, ...(o.deviceCgroupRules ?? [])];
  const resources: LinuxResources = input.cgroupsEnforced ? { ...input.resources, devices: deviceRules } : { devices: deviceRules };

  const oomScoreAdj = oomScoreAdjFor(o, input.host.capBounding);
  const capabilities = resolveCapabilities(o, input.host.capBounding);
  const seccomp = seccompFor(o, input.seccomp, capabilities.bounding);
  const apparmorProfile = appArmorFor(o, input.host.appArmor === true);
  // Docker leaves no_new_privs off; berth turns it on by default, but not for --privileged (which asks
  // for no confinement, and whose setuid tools must work); --security-opt decides either way.
  const noNewPrivileges = o.security?.noNewPrivileges ?? !o.privileged;
  const unmasked = o.privileged === true || o.security?.unconfinedSystemPaths === true;
  let args = mergeArgs(cfg, o.entrypoint, o.cmd);
  const initMounts: OciMount[] = [];
  if (o.init) {
    if (input.initPath === undefined) throw new BerthError('host', '--init: no init binary was given to the spec builder');
    args = [INIT_PATH_IN_CONTAINER, '--', ...args];
    initMounts.push({ destination: INIT_PATH_IN_CONTAINER, type: 'bind', source: input.initPath, options: ['bind', 'ro', 'nosuid', 'nodev'] });
  }

  // --pid host / --ipc host: the host's namespace, by leaving the container's own out of the list.
  const namespaces = (['pid', 'ipc', 'uts', 'mount'] as NamespaceType[]).filter((n) => !(n === 'pid' && o.pidMode === 'host') && !(n === 'ipc' && o.ipcMode === 'host'));
  if (o.network !== 'host') namespaces.push('network');
  if (input.host.cgroupNamespace) namespaces.push('cgroup');

  return {
    ociVersion: OCI_VERSION,
    process: {
      // -t / compose tty: the runtime makes a pty and hands its master to the monitor (--console-socket).
      terminal: o.tty === true,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 && { additionalGids: [...user.additionalGids] }) },
      args,
      env: mergeEnv(cfg?.Env, o.env, hostname, user.home),
      cwd: path.posix.normalize(cwd).replace(/(.)\/+$/, '$1'),
      capabilities,
      rlimits: buildRlimits(o.ulimits, input.host.rlimitHard),
      noNewPrivileges,
      oomScoreAdj,
      ...(apparmorProfile !== undefined && { apparmorProfile }),
    },
    root: { path: input.rootfs, readonly: o.readOnly },
    hostname,
    ...(o.domainname !== undefined && { domainname: o.domainname }),
    mounts: [
      ...buildMounts({
        volumes: o.volumes, tmpfs: o.tmpfs, stateRoot: input.stateRoot, checkSources: input.checkMountSources ?? true,
        ...(o.shmSize !== undefined && { shmSize: o.shmSize }), privileged: o.privileged === true, recursiveReadOnly: input.host.recursiveReadOnly === true,
      }),
      // rw, as docker's: programs that rewrite resolv.conf keep working; the files are the container's own.
      ...(input.network?.mounts ?? []).map((m) => ({ destination: m.destination, type: 'bind', source: m.source, options: ['rbind', 'rprivate', 'rw'] })),
      ...initMounts,
    ],
    linux: {
      namespaces: namespaces.map((type) => (type === 'network' && input.network ? { type, path: input.network.namespacePath } : { type })),
      devices: nodes,
      resources,
      cgroupsPath: input.cgroupsPath ?? `/berth/${input.id}`,
      maskedPaths: unmasked ? [] : maskedPaths(input.host),
      readonlyPaths: unmasked ? [] : [...READONLY_PATHS],
      ...(o.sysctls !== undefined && Object.keys(o.sysctls).length > 0 && { sysctl: { ...o.sysctls } }),
      ...(seccomp.filter !== undefined && { seccomp: seccomp.filter }),
    },
    annotations: { [SECCOMP_ANNOTATION]: JSON.stringify(seccomp.summary) },
  };
}

/**
 * The seccomp filter: none for `--privileged` (Docker's: it asks for no confinement), none for
 * `seccomp=unconfined`, the named profile as written, else the default profile with berth's
 * Docker-parity denials. Converted for the container's own capability set (its bounding set), since
 * profile rules are conditioned on capabilities.
 */
function seccompFor(o: RunOptions, source: SeccompSource, caps: readonly string[]): SeccompResult {
  if (o.privileged) return { summary: { mode: 'unconfined', reason: 'privileged' } };
  const asked = o.security?.seccomp;
  const choice: SeccompChoice = asked === undefined ? { kind: 'default' } : asked === 'unconfined' ? { kind: 'unconfined' } : { kind: 'profile', path: asked };
  return source.resolve(choice, caps);
}

/**
 * `apparmor=PROFILE` becomes the process's profile where the host has AppArmor; asked for on a host
 * without it, the container is refused (Docker ignores it silently: berth does not pretend to confine).
 */
function appArmorFor(o: RunOptions, hostHasAppArmor: boolean): string | undefined {
  const p = o.security?.apparmor;
  if (p === undefined || p === 'unconfined') return undefined;
  if (!hostHasAppArmor) {
    throw new BerthError('host', `--security-opt apparmor=${p}: this host has no AppArmor (the kernel lacks it or has it off), so the profile cannot be applied`, {
      hint: 'drop the option, or use apparmor=unconfined',
    });
  }
  return p;
}

/**
 * The OOM score: `--oom-score-adj` when given, else the priority class's (best-effort killed first).
 * Always explicit, 0 for a normal container: left out, the container would inherit the score of the
 * process that started the runtime, which for the agent is -900. Lowering it needs CAP_SYS_RESOURCE, which a sandboxed host may
 * withhold: the runtime would then fail the start, so a class default falls back to 0 there, while an
 * explicit negative value is refused with the reason.
 */
function oomScoreAdjFor(o: RunOptions, capBounding: bigint | undefined): number {
  const lacksSysResource = capBounding !== undefined && (capBounding & CAP_SYS_RESOURCE) === 0n;
  if (o.oomScoreAdj !== undefined) {
    if (o.oomScoreAdj < 0 && lacksSysResource) throw new BerthError('host', `--oom-score-adj ${o.oomScoreAdj}: lowering the OOM score needs CAP_SYS_RESOURCE, which berth does not have here`);
    return o.oomScoreAdj;
  }
  const wanted = PRIORITY_POLICIES[priorityOf(o.labels)].oomScoreAdj;
  return wanted < 0 && lacksSysResource ? 0 : wanted;
}
