import { spawn } from 'node:child_process';
import { ownerOf } from '../../compose/labels.js';
import { wantsSupervisorApi } from '../../compose/service-balena.js';
import type { NetworkService } from '../../network/service.js';
import type { ContainerEngine } from '../../runtime/engine-api.js';
import type { SupervisorKeyRecords } from '../../store/supervisor-keys.js';
import { SupervisorBackend, type SupervisorBackendDeps } from './backend.js';
import { gatewaysOf } from './device-env.js';
import { LOOPBACK, supervisorHost, SUPERVISOR_API_PORT } from './env.js';
import type { PowerAction } from './routes.js';
import type { SupervisorApiServer } from './server.js';

/**
 * The berth agent's local subset of balena's supervisor API (`io.balena.features.supervisor-api`).
 * The deployer gives a labelled container its address and app key (device-env.ts); this runs the
 * listeners those containers were told of, following the engine's events: a listener appears when the
 * first labelled container on its address is created or started, and goes when the last one is gone.
 * An agent that runs no labelled container listens on nothing.
 */
export interface SupervisorApiDeps extends Omit<SupervisorBackendDeps, 'engine'> {
  readonly engine: ContainerEngine;
  readonly networks: Pick<NetworkService, 'list'>;
  readonly keys: SupervisorKeyRecords;
  /** agent.yaml `supervisorApi.allowPower`: how to reboot or power off; undefined = refused. */
  readonly power?: (action: PowerAction) => void;
  readonly log: (event: string, detail: Record<string, unknown>) => void;
  /** balena's 48484 unless a test says otherwise. */
  readonly port?: number;
}

/** Runs until `signal` aborts, then closes every listener. */
export async function runSupervisorApi(d: SupervisorApiDeps, signal: AbortSignal): Promise<void> {
  // The HTTP side (server.ts, and with it node:http, _http_server, …: ~0.6 MiB of an idle agent's RSS,
  // BENCHMARKS.md issue 22, session 8) is loaded when the first labelled container wants a listener, not
  // before: most agents never run one. A dynamic import of this module, not of node:http itself, which the
  // agent bundle must require (scripts/bundle-agent.mjs: lite mode and Node 22's undici).
  // Calls run one after the other, so the last one (closing on abort) also waits for a load in flight.
  let server: SupervisorApiServer | undefined;
  let queue = Promise.resolve();
  const listenOn = (hosts: ReadonlySet<string>): Promise<void> =>
    (queue = queue.then(async () => {
      if (server === undefined) {
        if (hosts.size === 0) return;
        const { SupervisorApiServer } = await import('./server.js');
        server = new SupervisorApiServer({
          ctx: { backend: new SupervisorBackend(d), keys: d.keys, ...(d.power && { power: d.power }) },
          port: d.port ?? SUPERVISOR_API_PORT,
          log: d.log,
        });
      }
      await server.listenOn(hosts);
    }));
  const gatewayOf = gatewaysOf(d.networks);
  const wanted = (): Set<string> => {
    const hosts = new Set<string>();
    for (const c of d.engine.list()) {
      // Deployed containers only: the deployer gave them the address and key (a `berth run --label` got neither).
      if ((c.state !== 'running' && c.state !== 'created') || ownerOf(c.options.labels) === undefined || !wantsSupervisorApi(c.options.labels)) continue;
      try {
        const host = supervisorHost(c.options, gatewayOf);
        // Loopback is there from the start; a bridge's gateway address appears with its first running container.
        if (c.state === 'running' || host === LOOPBACK) hosts.add(host);
      } catch (err) {
        d.log('supervisor-api-unreachable', { container: c.name, error: (err as Error).message });
      }
    }
    return hosts;
  };
  let scheduled = false;
  const resync = (): void => {
    if (scheduled || signal.aborted) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      if (!signal.aborted) void listenOn(wanted());
    });
  };
  const unsubscribe = d.engine.subscribe((e) => {
    if (e.type === 'create' || e.type === 'start' || e.type === 'exit' || e.type === 'remove') resync();
  });
  await listenOn(wanted());
  await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
  unsubscribe();
  await listenOn(new Set());
}

/**
 * agent.yaml `supervisorApi.allowPower`: balena's /v1/reboot and /v1/shutdown as systemd does them.
 * The containers keep running under their monitors until the system stops them, as on any shutdown.
 */
export function systemPower(log: (event: string, detail: Record<string, unknown>) => void): (action: PowerAction) => void {
  return (action) => {
    const verb = action === 'reboot' ? 'reboot' : 'poweroff';
    log('supervisor-api-power', { action: verb });
    const child = spawn('systemctl', [verb], { stdio: 'ignore', detached: true });
    child.on('error', (err) => log('supervisor-api-power-failed', { action: verb, error: err.message }));
    child.unref();
  };
}
