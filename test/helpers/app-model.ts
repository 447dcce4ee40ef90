import type { App, AppNetwork, AppService, AppVolume, ServiceDependency } from '../../src/compose/model.js';
import type { Healthcheck } from '../../src/compose/healthcheck.js';
import { containerName, ownerLabels } from '../../src/compose/labels.js';
import { defaultRunOptions, type RunOptions } from '../../src/runtime/options.js';

/**
 * Hand-built app models for the reconciler's tests: what the compose stage would produce, without
 * going through a compose file (so the planner and the deployer are tested on the model's contract).
 */

export interface ServiceDraft {
  readonly image?: string;
  /** Stands for the spec: a different hash is a different container. Default `h1`. */
  readonly hash?: string;
  readonly cmd?: readonly string[];
  readonly healthcheck?: Healthcheck;
  readonly dependsOn?: Readonly<Record<string, Partial<ServiceDependency> & Pick<ServiceDependency, 'condition'>>>;
  /** Run options over `berth run NAME`'s defaults (the ownership labels are set after these). */
  readonly run?: Partial<RunOptions>;
}

export function service(name: string, d: ServiceDraft = {}, revision = 1): AppService {
  const hash = d.hash ?? 'h1';
  const run = { ...defaultRunOptions(containerName(name, hash)), ...d.run, ...(d.cmd && { cmd: d.cmd }), labels: ownerLabels({}, name, hash, revision) };
  const dependsOn = new Map(Object.entries(d.dependsOn ?? {}).map(([dep, x]) => [dep, { restart: false, required: true, ...x }]));
  return { name, image: d.image ?? 'registry.local/app:v1', hash, run, dependsOn, ...(d.healthcheck && { healthcheck: d.healthcheck }) };
}

export const network = (app: string, key: string, o: Partial<AppNetwork> = {}): AppNetwork => ({
  name: key, hostName: `${app}_${key}`, external: false, internal: false, driverOpts: {}, enableIpv6: false, labels: {}, ...o,
});

export const volume = (app: string, key: string, o: Partial<AppVolume> = {}): AppVolume => ({
  name: key, hostName: `${app}_${key}`, external: false, driverOpts: {}, labels: {}, ...o,
});

export interface AppDraft {
  readonly name?: string;
  readonly revision?: number;
  readonly services: Readonly<Record<string, ServiceDraft>>;
  readonly networks?: readonly AppNetwork[];
  readonly volumes?: readonly AppVolume[];
  readonly healthWindowMs?: number;
}

export function appModel(d: AppDraft): App {
  const revision = d.revision ?? 1;
  const names = Object.keys(d.services).sort();
  return {
    name: d.name ?? 'iot',
    revision,
    services: new Map(names.map((n) => [n, service(n, d.services[n], revision)])),
    update: { strategy: 'download-then-kill', healthWindowMs: d.healthWindowMs ?? 0, onFailure: 'rollback' },
    networks: new Map((d.networks ?? []).map((n) => [n.name, n])),
    volumes: new Map((d.volumes ?? []).map((v) => [v.name, v])),
    configs: new Map(),
    secrets: new Map(),
    // What the store records: the test's own revision, with no services the compose stage would read back.
    source: { revision, services: {} },
  };
}

/** A healthcheck that runs `sh -c SCRIPT` every `intervalMs`. */
export const shellCheck = (script: string, intervalMs = 20, retries = 1): Healthcheck => ({ argv: ['/bin/sh', '-c', script], intervalMs, timeoutMs: 5000, retries, startPeriodMs: 0 });
