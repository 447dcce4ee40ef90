import { wantsSupervisorApi } from '../../compose/service-balena.js';
import type { App, AppService } from '../../compose/model.js';
import type { NetworkService } from '../../network/service.js';
import type { SupervisorKeyRecords } from '../../store/supervisor-keys.js';
import { supervisorEnv, supervisorHost, type GatewayOf } from './env.js';

/** A bridge network's gateway by host name, read from the network records each time (a deploy creates networks). */
export const gatewaysOf = (networks: Pick<NetworkService, 'list'>): GatewayOf => (name) => networks.list().find((n) => n.name === name)?.gateway;

/**
 * The deployer's `deviceEnv` (DeployerDeps): balena's supervisor variables for a service carrying the
 * label, nothing for the others. The app's key is made on first use and kept in the store.
 */
export function deviceEnvOf(keys: SupervisorKeyRecords, networks: Pick<NetworkService, 'list'>): (app: App, service: AppService) => readonly string[] {
  const gatewayOf = gatewaysOf(networks);
  return (app, service) => {
    if (!wantsSupervisorApi(service.run.labels)) return [];
    return supervisorEnv({ identity: keys.identity(app.name), service: service.name, deviceUuid: keys.deviceUuid(), host: supervisorHost(service.run, gatewayOf) });
  };
}
