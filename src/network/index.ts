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

function findNetavarkTool(searchPath: string): NetavarkTool {
  const iptables = which('iptables', searchPath);
  return {
    binary: requireHelper('netavark', searchPath), aardvarkBinary: requireHelper('aardvark-dns', searchPath), configDir: `${NETWORK_RUN_DIR}/netavark`,
    ...(iptables !== undefined && { iptables }),
  };
}

/** The network records of one state store, sharing the host's subnets with every other state root. */
export function createNetworkService(store: StateStore, host: HostPaths): NetworkService {
  return new NetworkService(store, host, new SubnetClaims(`${NETWORK_RUN_DIR}/subnets`, store.file));
}

/** The production wiring over one state store: tools found on first use under podman's helper dirs or `searchPath`. */
export function createContainerNetworking(store: StateStore, host: HostPaths, searchPath: string): ContainerNetworking {
  let tool: NetavarkTool | undefined;
  return new ContainerNetworking(createNetworkService(store, host), {
    host,
    netns: new NetnsManager(),
    runDir: `${NETWORK_RUN_DIR}/up`,
    tool: () => (tool ??= findNetavarkTool(searchPath)),
  });
}
