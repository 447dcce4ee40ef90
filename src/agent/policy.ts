import fs from 'node:fs';
import path from 'node:path';
import type { App, AppService } from '../compose/model.js';
import { appDataDir } from '../compose/normalize.js';
import { containerName } from '../compose/labels.js';
import { BerthError } from '../errors.js';
import { DEFAULT_ROOT } from '../host/paths.js';
import { isBeneath, realRoots } from '../runtime/bind-pin.js';

/**
 * The device deploy policy (agent.yaml `deployPolicy`, set at flash time): what a desired state from
 * the fleet may ask of this device. Everything that reaches past the container's own sandbox into the
 * host is off unless the policy names it, so a stolen fleet credential, or a fleet key used carelessly,
 * cannot turn a deploy into root on the board. `berth deploy` run locally by root is not checked: root
 * on the board needs no deploy to be root.
 */
export interface DeployPolicy {
  /** `privileged`, and the options that take the container's confinement off (see {@link checkDeployPolicy}). */
  readonly privileged: boolean;
  /** `network_mode: host`. */
  readonly hostNetwork: boolean;
  /** `pid: host`. */
  readonly hostPid: boolean;
  /** Host path prefixes a bind mount may come from, besides the app's own data directory. */
  readonly bindPaths: readonly string[];
  /** Host devices that may be mapped: exact paths, or directories when they end in `/`. */
  readonly devices: readonly string[];
  /** Capabilities `cap_add` may add (`CAP_NET_ADMIN` …); `ALL` only with `privileged`. */
  readonly capabilities: readonly string[];
}

/** Nothing beyond the sandbox: what a device gets when agent.yaml says nothing. */
export const DEFAULT_DEPLOY_POLICY: DeployPolicy = { privileged: false, hostNetwork: false, hostPid: false, bindPaths: [], devices: [], capabilities: [] };

/** The policy keys as agent.yaml spells them, so a refusal names the key to change. */
const RULE = {
  privileged: 'deployPolicy.privileged',
  hostNetwork: 'deployPolicy.hostNetwork',
  hostPid: 'deployPolicy.hostPid',
  bindPaths: 'deployPolicy.bindPaths',
  devices: 'deployPolicy.devices',
  capabilities: 'deployPolicy.capabilities',
} as const;

/**
 * Where a bind source really leads: the path itself and, when it exists, its real path, so a symlink
 * planted inside an allowed directory (by a container that has it mounted) cannot lead a later deploy
 * out of it. What exists only later (created by the engine) is judged by its path alone; the engine
 * checks again, on the opened source, at every start (bind-pin.ts).
 */
function hostPaths(source: string): string[] {
  const p = path.resolve(source);
  try {
    return [p, fs.realpathSync(p)];
  } catch {
    return [p];
  }
}

function violation(app: App, svc: AppService, rule: string, what: string): BerthError {
  return new BerthError('auth', `service ${svc.name}: ${what}, which this device's deploy policy does not allow (${rule})`, {
    hint: `a remote deploy may ask only what ${rule} in /etc/berth/agent.yaml allows (berth flash sets it); app ${app.name}`,
  });
}

/**
 * The host directories a remote deploy of `app` may bind from: the app's own data directory
 * (`<stateRoot>/apps/<app>`, where a fleet deploy's relative bind sources resolve: normalize.ts) and
 * the policy's `bindPaths`. The agent checks a desired state against them when it arrives
 * ({@link checkDeployPolicy}) and has the engine hold each container to them again at every start
 * (RunOptions.confineBinds, src/runtime/bind-pin.ts), where a symlink swapped in between would show.
 */
export function bindRoots(policy: DeployPolicy, stateRoot: string, app: string): string[] {
  return [appDataDir(stateRoot, app), ...policy.bindPaths];
}

/** The first rule `svc` breaks, or undefined. */
function check(app: App, svc: AppService, policy: DeployPolicy, roots: readonly string[]): BerthError | undefined {
  const run = svc.run;
  if (!policy.privileged) {
    if (run.privileged) return violation(app, svc, RULE.privileged, 'privileged: true');
    if (run.security?.unconfinedSystemPaths) return violation(app, svc, RULE.privileged, 'security_opt systempaths=unconfined');
    if (run.security?.noNewPrivileges === false) return violation(app, svc, RULE.privileged, 'security_opt no-new-privileges:false');
    if ((run.deviceCgroupRules ?? []).length > 0) return violation(app, svc, RULE.privileged, 'device_cgroup_rules');
  }
  if (!policy.hostNetwork && run.network === 'host') return violation(app, svc, RULE.hostNetwork, 'network_mode: host');
  if (!policy.hostPid && run.pidMode === 'host') return violation(app, svc, RULE.hostPid, 'pid: host');
  // A container:X join reaches into X's namespaces: only X's of this app (compose's `service:S`).
  const own = new Set([...app.services.values()].map((o) => containerName(o.name, o.hash)));
  for (const [key, mode] of [['network_mode', run.network], ['pid', run.pidMode], ['ipc', run.ipcMode]] as const) {
    if (mode?.startsWith('container:') && !own.has(mode.slice('container:'.length))) {
      return violation(app, svc, 'deployPolicy (joins only this app\'s services)', `${key}: ${mode}, a container outside app ${app.name}`);
    }
  }
  for (const cap of run.capAdd ?? []) {
    const allowed = cap === 'ALL' ? policy.privileged : policy.privileged || policy.capabilities.includes(cap);
    if (!allowed) return violation(app, svc, RULE.capabilities, `cap_add ${cap}`);
  }
  const allowed = realRoots(roots);
  for (const v of run.volumes) {
    if (v.kind !== 'bind') continue;
    if (!hostPaths(v.source).every((p) => allowed.some((r) => isBeneath(p, r)))) return violation(app, svc, RULE.bindPaths, `a bind mount of the host path ${v.source}`);
  }
  for (const d of run.devices) {
    const ok = policy.devices.some((a) => (a.endsWith('/') ? d.hostPath.startsWith(a) : d.hostPath === a));
    if (!ok) return violation(app, svc, RULE.devices, `the host device ${d.hostPath}`);
  }
  return undefined;
}

/**
 * Throws an `auth` BerthError naming the service and the policy key of the first rule a service breaks.
 * `stateRoot` is the device's (the one `app` was normalized with): bind mounts under the app's own data
 * directory there are always allowed ({@link bindRoots}).
 */
export function checkDeployPolicy(app: App, policy: DeployPolicy, stateRoot = DEFAULT_ROOT): void {
  const roots = bindRoots(policy, stateRoot, app.name);
  for (const svc of app.services.values()) {
    const err = check(app, svc, policy, roots);
    if (err) throw err;
  }
}
