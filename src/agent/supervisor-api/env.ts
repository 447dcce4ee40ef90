import { BerthError } from '../../errors.js';
import type { RunOptions } from '../../runtime/options.js';
import type { AppIdentity } from '../../store/supervisor-keys.js';

/**
 * What a container that carries `io.balena.features.supervisor-api` is told, as balena's supervisor
 * tells it: where the API is and the key scoped to its app. The variables are added by the deployer
 * when it creates the container (never written into a desired state or the spec hash), so a device's
 * key never travels with a compose file.
 */

/** balena's port, kept: apps and libraries hard-code 48484 as often as they read BALENA_SUPERVISOR_PORT. */
export const SUPERVISOR_API_PORT = 48484;

/** The loopback address host-network containers (and the agent's own checks) reach the API on. */
export const LOOPBACK = '127.0.0.1';

/** What the address choice needs to know of the device: a bridge network's gateway, by host name. */
export type GatewayOf = (network: string) => string | undefined;

/**
 * The address a container reaches the API on: loopback when it shares the host's network namespace,
 * else the gateway of its first bridge network (balena's supervisor0 plays that role on balenaOS). The
 * agent listens on exactly these addresses (server.ts), never on a wildcard, so the API is not reachable
 * from beyond the host. A container without a network of its own (`none`, `container:X`) is told
 * loopback: it reaches the API only when its namespace is the host's.
 */
export function supervisorHost(run: Pick<RunOptions, 'network' | 'endpoints' | 'name'>, gatewayOf: GatewayOf): string {
  const network = run.endpoints?.[0]?.network ?? run.network;
  if (network === 'host' || network === 'none' || network === 'private' || network.startsWith('container:')) return LOOPBACK;
  const gateway = gatewayOf(network);
  if (gateway === undefined) throw new BerthError('internal', `${run.name}: network ${network} has no gateway for the supervisor API`);
  return gateway;
}

export interface SupervisorEnvInput {
  readonly identity: AppIdentity;
  readonly service: string;
  readonly deviceUuid: string;
  readonly host: string;
}

/**
 * balena's variables, each also under its `RESIN_` name (balena-supervisor still sets both for apps
 * written before the rename). Placed before the service's own environment by the caller, so a value
 * the service sets itself wins, as with every other balena feature variable.
 */
export function supervisorEnv(i: SupervisorEnvInput): string[] {
  const vars: Array<[string, string]> = [
    ['SUPERVISOR_ADDRESS', `http://${i.host}:${SUPERVISOR_API_PORT}`],
    ['SUPERVISOR_HOST', i.host],
    ['SUPERVISOR_PORT', String(SUPERVISOR_API_PORT)],
    ['SUPERVISOR_API_KEY', i.identity.apiKey],
    ['APP_ID', String(i.identity.appId)],
    ['APP_NAME', i.identity.app],
    ['SERVICE_NAME', i.service],
    ['DEVICE_UUID', i.deviceUuid],
  ];
  return [
    'BALENA=1', 'RESIN=1',
    ...vars.map(([k, v]) => `BALENA_${k}=${v}`),
    ...vars.map(([k, v]) => `RESIN_${k}=${v}`),
  ];
}
