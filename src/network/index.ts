import { BerthError } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import type { StateStore } from '../store/store.js';
import { ContainerNetworking } from './container.js';
import { NetnsManager } from './netns.js';
import { NetworkService } from './service.js';
import { SubnetClaims } from './subnet-claims.js';
import { which } from '../host/which.js';
import type { NetavarkTool } from './netavark.js';
import { requireHelper } from './tools.js';
import type { ResolverSource } from './resolver-source.js';

/**
 * berth's container networking (issue 16): bridge networks with IPAM in the state store, wired up by
 * netavark + aardvark-dns. The engine sees only ContainerNetworking; `berth network` only NetworkService.
 */
export { ContainerNetworking, type ConnectOptions, type ContainerNetworkOptions, type NetworkReconcileReport, type PreparedNetwork } from './container.js';
export { DEFAULT_NETWORK, NetworkService, type CreateNetworkRequest } from './service.js';
export { isBridgeNetwork } from './mode.js';
export { resolverSource, type ResolverSource } from './resolver-source.js';

/** netavark's state and berth's "networking is up" markers: tmpfs, gone after a reboot like the namespaces. */
export const NETWORK_RUN_DIR = '/run/berth/network';

/**
 * The network run directory: BERTH_NETWORK_RUN_DIR, else {@link NETWORK_RUN_DIR}. What berth processes
 * share about netavark is under it (netavark's config dir with aardvark-dns, the netavark lock, the
 * "up" and DNS-guard markers), so a test that must own aardvark-dns alone (the integration setup, which
 * gives it a loopback-only upstream; a test that counts and kills aardvark processes) runs its berth
 * processes with a directory of its own. Subnet claims are not under it: the host has one routing
 * table, so they stay in {@link NETWORK_RUN_DIR} for every berth process whatever its run directory.
 */
export function networkRunDir(env: NodeJS.ProcessEnv): string {
  return env.BERTH_NETWORK_RUN_DIR || NETWORK_RUN_DIR;
}

function findNetavarkTool(searchPath: string, runDir: string, resolver: ResolverSource): NetavarkTool {
  const iptables = which('iptables', searchPath);
  const ip6tables = which('ip6tables', searchPath);
  const flock = which('flock', searchPath);
  if (flock === undefined) throw new BerthError('host', 'flock is not installed: bridge networking needs it to serialize netavark across berth processes', { hint: 'apt-get install util-linux' });
  let unshare: string | undefined;
  if (resolver.file !== undefined) {
    unshare = which('unshare', searchPath);
    if (unshare === undefined) throw new BerthError('host', `unshare is not installed: BERTH_RESOLV_CONF (${resolver.file}) is given to aardvark-dns through a mount namespace`, { hint: 'apt-get install util-linux' });
  }
  return {
    binary: requireHelper('netavark', searchPath), aardvarkBinary: requireHelper('aardvark-dns', searchPath), configDir: `${runDir}/netavark`,
    lock: { flock, file: `${runDir}/netavark.lock` },
    ...(iptables !== undefined && { iptables }),
    ...(ip6tables !== undefined && { ip6tables }),
    ...(resolver.file !== undefined && { resolver: { source: resolver, ...(unshare !== undefined && { unshare }) } }),
  };
}

/** The network records of one state store, sharing the host's subnets with every other state root. */
export function createNetworkService(store: StateStore, host: HostPaths): NetworkService {
  return new NetworkService(store, host, new SubnetClaims(`${NETWORK_RUN_DIR}/subnets`, store.file));
}

/** The production wiring over one state store: tools found on first use under podman's helper dirs or `searchPath`. */
export function createContainerNetworking(store: StateStore, host: HostPaths, searchPath: string, runDir = NETWORK_RUN_DIR, resolver: ResolverSource = {}): ContainerNetworking {
  let tool: NetavarkTool | undefined;
  return new ContainerNetworking(createNetworkService(store, host), {
    host,
    resolver,
    netns: new NetnsManager(),
    runDir: `${runDir}/up`,
    dnsGuardDir: `${runDir}/dns-guard`,
    tool: () => (tool ??= findNetavarkTool(searchPath, runDir, resolver)),
  });
}
