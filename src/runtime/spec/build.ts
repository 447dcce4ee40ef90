import path from 'node:path';
import { BerthError } from '../../errors.js';
import { PRIORITY_POLICIES, priorityOf } from '../../cgroup/priority.js';
import type { LinuxResources } from '../../cgroup/resources.js';
import type { RunOptions } from '../options.js';
import { DEFAULT_DEVICE_RULES, resolveDevices } from './devices.js';
import type { HostFacts } from './host.js';
import { buildMounts, MASKED_PATHS, READONLY_PATHS } from './mounts.js';
import { buildRlimits, defaultCapabilities, mergeArgs, mergeEnv, type ImageProcessConfig } from './process.js';
import { OCI_VERSION, type NamespaceType, type OciSpec } from './types.js';
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
   * `--cgroup-manager=disabled`, ignores them), because runc refuses `unified` on v1 and crun refuses
   * hybrid hosts altogether. `cgroupsPath` is kept either way: runc then places the container in
   * `/berth/<id>` in every v1 hierarchy (so kill/delete find all its processes), crun ignores it.
   */
  readonly cgroupsEnforced: boolean;
  /** Check that bind-mount sources exist (default true). */
  readonly checkMountSources?: boolean;
  /** A bridged container's network namespace (made before the runtime runs) and its /etc files (src/network/container.ts). */
  readonly network?: { readonly namespacePath: string; readonly mounts: ReadonlyArray<{ readonly destination: string; readonly source: string }> };
}

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

  const user = resolveUser(input.rootfs, o.user ?? cfg?.User ?? '');
  const cwd = o.workdir ?? (cfg?.WorkingDir ? cfg.WorkingDir : '/');
  if (!cwd.startsWith('/')) throw new BerthError('invalid', `working directory "${cwd}" must be absolute`);

  const { nodes, rules } = resolveDevices(o.devices, input.host);
  const deviceRules = [...DEFAULT_DEVICE_RULES, ...rules];
  const resources: LinuxResources = input.cgroupsEnforced ? { ...input.resources, devices: deviceRules } : { devices: deviceRules };

  // The OOM killer's order follows the priority class (best-effort first); 0 leaves the runtime's default.
  // Lowering it needs CAP_SYS_RESOURCE, which a sandboxed host may withhold: the runtime would then fail
  // the start, so a critical container keeps the default there rather than not running at all.
  const wanted = PRIORITY_POLICIES[priorityOf(o.labels)].oomScoreAdj;
  const oomScoreAdj = wanted < 0 && input.host.capBounding !== undefined && (input.host.capBounding & CAP_SYS_RESOURCE) === 0n ? 0 : wanted;

  const namespaces: NamespaceType[] = ['pid', 'ipc', 'uts', 'mount'];
  if (o.network !== 'host') namespaces.push('network');
  if (input.host.cgroupNamespace) namespaces.push('cgroup');

  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 && { additionalGids: [...user.additionalGids] }) },
      args: mergeArgs(cfg, o.entrypoint, o.cmd),
      env: mergeEnv(cfg?.Env, o.env, hostname, user.home),
      cwd: path.posix.normalize(cwd).replace(/(.)\/+$/, '$1'),
      capabilities: defaultCapabilities(input.host.capBounding),
      rlimits: buildRlimits(o.ulimits, input.host.rlimitHard),
      noNewPrivileges: true,
      ...(oomScoreAdj !== 0 && { oomScoreAdj }),
    },
    root: { path: input.rootfs, readonly: o.readOnly },
    hostname,
    mounts: [
      ...buildMounts({ network: o.network, volumes: o.volumes, tmpfs: o.tmpfs, stateRoot: input.stateRoot, checkSources: input.checkMountSources ?? true }),
      // rw, as docker's: programs that rewrite resolv.conf keep working; the files are the container's own.
      ...(input.network?.mounts ?? []).map((m) => ({ destination: m.destination, type: 'bind', source: m.source, options: ['rbind', 'rprivate', 'rw'] })),
    ],
    linux: {
      namespaces: namespaces.map((type) => (type === 'network' && input.network ? { type, path: input.network.namespacePath } : { type })),
      devices: nodes,
      resources,
      cgroupsPath: input.cgroupsPath ?? `/berth/${input.id}`,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
}
