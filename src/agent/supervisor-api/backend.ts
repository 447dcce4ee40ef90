import fs from 'node:fs';
import os from 'node:os';
import { BerthError } from '../../errors.js';
import type { AppCache } from '../../compose/cache.js';
import type { App } from '../../compose/model.js';
import type { HostPaths } from '../../host/paths.js';
import type { ContainerEngine } from '../../runtime/engine-api.js';
import type { ContainerRecord } from '../../runtime/records.js';
import type { DeploymentRecords } from '../deployments.js';
import { runningApp, withContainers, type RunningService } from '../state.js';

/**
 * What the supervisor API reads and does, over the parts the agent already has: the deployment records
 * and the app models (state.ts's runningApp, the same view `reported` is built from), and the engine's
 * stop/start for the service actions. No second reconciler: a stopped service stays stopped until a
 * start-service, a restart or the next deploy, as on balena.
 */
export interface SupervisorBackendDeps {
  readonly engine: ContainerEngine;
  readonly records: DeploymentRecords;
  readonly apps: AppCache;
  readonly host: HostPaths;
  /** berth's version: balena's `supervisor_version`. */
  readonly version: string;
  /** The device's name (agent.yaml deviceId, else the host name): balena's `deviceName`. */
  readonly deviceName: string;
}

/** The deployment as the API reports it. */
export interface DeviceStatus {
  /** The revision the device runs or is applying; 0 before the first deploy. */
  readonly revision: number;
  /** A deploy is being applied now. */
  readonly applying: boolean;
  /** The newest deploy failed or was rolled back. */
  readonly failed: boolean;
}

/** The addresses of the host's own interfaces: no loopback, no container bridges or veths (balena leaves out its supervisor0 and engine bridges too). */
const hostAddresses = (): os.NetworkInterfaceInfo[] => Object.entries(os.networkInterfaces())
  .filter(([name]) => !/^(lo|br-|veth|podman|cni|docker)/.test(name))
  .flatMap(([, addrs]) => (addrs ?? []).filter((a) => !a.internal));

export class SupervisorBackend {
  constructor(private readonly d: SupervisorBackendDeps) {}

  get version(): string {
    return this.d.version;
  }

  get deviceName(): string {
    return this.d.deviceName;
  }

  /** The app that should be running (state.ts runningApp); undefined before the first deploy. */
  app(): App | undefined {
    return runningApp(this.d.records, this.d.apps);
  }

  status(): DeviceStatus {
    const latest = this.d.records.latest();
    return {
      revision: this.app()?.revision ?? 0,
      applying: latest?.status === 'applying',
      failed: latest?.status === 'failed' || latest?.status === 'rolled-back',
    };
  }

  /** The running app's services with their current containers, when `app` is it; else none. */
  services(app: string): Array<RunningService> {
    const a = this.app();
    return a?.name === app ? withContainers([...a.services.values()], this.d.engine.list()) : [];
  }

  /** The container of `service` of `app`; notFound (naming it) when the service or its container is not there. */
  private container(app: string, service: string): ContainerRecord {
    const s = this.services(app).find((x) => x.name === service);
    if (s === undefined) throw new BerthError('notFound', `service ${service} is not part of app ${app}`);
    if (s.container === undefined) throw new BerthError('notFound', `service ${service} of app ${app} has no container yet`);
    return s.container;
  }

  async stopService(app: string, service: string): Promise<void> {
    await this.d.engine.stop(this.container(app, service).id);
  }

  async startService(app: string, service: string): Promise<void> {
    const c = this.container(app, service);
    if (c.state !== 'running') await this.d.engine.start(c.id);
  }

  /** Stops (when running) then starts the service's container: a new run of the same container, as `docker restart`. */
  async restartService(app: string, service: string): Promise<void> {
    const c = this.container(app, service);
    if (c.state === 'running') await this.d.engine.stop(c.id);
    await this.d.engine.start(c.id);
  }

  /** Restarts every service of `app` that has a container, in name order. */
  async restartApp(app: string): Promise<void> {
    const services = this.services(app).filter((s) => s.container !== undefined);
    if (services.length === 0) throw new BerthError('notFound', `app ${app} is not running on this device`);
    for (const s of services) await this.restartService(app, s.name);
  }

  /** The host's own IPv4 addresses, space separated as balena reports them. */
  ipAddresses(): string {
    return hostAddresses().filter((a) => a.family === 'IPv4').map((a) => a.address).join(' ');
  }

  /** The first MAC address of those interfaces, upper case as balena reports it; undefined without one. */
  macAddress(): string | undefined {
    return hostAddresses().find((a) => a.mac !== '00:00:00:00:00:00')?.mac.toUpperCase();
  }

  /** The host OS's PRETTY_NAME from os-release (through HostPaths), else the kernel's name and release. */
  osVersion(): string {
    for (const f of ['/etc/os-release', '/usr/lib/os-release']) {
      try {
        const m = /^PRETTY_NAME=(?:"([^"]*)"|(.*))$/m.exec(fs.readFileSync(this.d.host.resolve(f), 'utf8'));
        if (m) return m[1] ?? m[2]!;
      } catch {
        /* try the next file: os-release may live in either place */
      }
    }
    return `${os.type()} ${os.release()}`;
  }
}
