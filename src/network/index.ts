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

/**
 * berth's container networking (issue 16): bridge networks with IPAM in the state store, wired up by
 * netavark + aardvark-dns. The engine sees only ContainerNetworking; `berth network` only NetworkService.
 */
export { ContainerNetworking, type ContainerNetworkOptions, type NetworkReconcileReport, type PreparedNetwork } from './container.js';
export { DEFAULT_NETWORK, NetworkService, type CreateNetworkRequest } from './service.js';
export { isBridgeNetwork } from './mode.js';

/** netavark's state and berth's "networking is up" markers: tmpfs, gone after a reboot like the namespaces. */
export const NETWORK_RUN_DIR = '/run/berth/network';

/**
 * The network run directory: BERTH_NETWORK_RUN_DIR, else {@link NETWORK_RUN_DIR}. Everything host-wide
 * that berth processes share about networking is under it (subnet claims, netavark's config dir with
 * aardvark-dns, the netavark lock), so a test that must own aardvark-dns alone (it counts and kills
 * aardvark processes) runs its berth processes with a directory of its own.
 */
export function networkRunDir(env: NodeJS.ProcessEnv): string {
  return env.BERTH_NETWORK_RUN_DIR || NETWORK_RUN_DIR;
}

function findNetavarkTool(searchPath: string, runDir: string): NetavarkTool {
  const iptables = which('iptables', searchPath);
  const flock = which('flock', searchPath);
  if (flock === undefined) throw new BerthError('host', 'flock is not installed: bridge networking needs it to serialize netavark across berth processes', { hint: 'apt-get install util-linux' });
  return {
    binary: requireHelper('netavark', searchPath), aardvarkBinary: requireHelper('aardvark-dns', searchPath), configDir: `${runDir}/netavark`,
    lock: { flock, file: `${runDir}/netavark.lock` },
    ...(iptables !== undefined && { iptables }),
  };
}

/** The network records of one state store, sharing the host's subnets with every other state root. */
export function createNetworkService(store: StateStore, host: HostPaths, runDir = NETWORK_RUN_DIR): NetworkService {
  return new NetworkService(store, host, new SubnetClaims(`${runDir}/subnets`, store.file));
}

/** The production wiring over one state store: tools found on first use under podman's helper dirs or `searchPath`. */
export function createContainerNetworking(store: StateStore, host: HostPaths, searchPath: string, runDir = NETWORK_RUN_DIR): ContainerNetworking {
  let tool: NetavarkTool | undefined;
  return new ContainerNetworking(createNetworkService(store, host, runDir), {
    host,
    netns: new NetnsManager(),
    runDir: `${runDir}/up`,
    tool: () => (tool ??= findNetavarkTool(searchPath, runDir)),
  });
}
