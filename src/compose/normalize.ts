import { parseDuration } from '../duration.js';
import type { DesiredState, UpdatePolicy } from '../protocol/types.js';
import { checkDesired, parseDesired, type DesiredCheck } from '../protocol/validate.js';
import { REVISION_LABEL } from './labels.js';
import { DEFAULT_APP_NAME, type App, type AppFile, type AppNetwork, type AppService, type AppUpdatePolicy, type AppVolume, type ServiceContext } from './model.js';
import { checkAppServices, normalizeService } from './service.js';
import { serviceHashes } from './service-hash.js';

/**
 * The compose stage: a schema-valid desired state (protocol/validate.ts checked its shape) → the app
 * model, every value parsed with `berth run`'s parsers. This is the only place a service spec is
 * interpreted; callers normalize once per revision and pass the App on.
 */

/** The update policy a desired state without `update` (or with part of it) gets. */
export const DEFAULT_UPDATE: UpdatePolicy = { strategy: 'download-then-kill', health_window: '30s', on_failure: 'rollback' };

function updatePolicy(u: Partial<UpdatePolicy> | undefined): AppUpdatePolicy {
  const p = { ...DEFAULT_UPDATE, ...u };
  return { strategy: p.strategy, healthWindowMs: parseDuration(p.health_window, 'update.health_window'), onFailure: p.on_failure };
}

/** Normalizes a desired state the protocol stage accepted; throws `invalid`/`usage` naming the key. */
export function normalizeDesired(desired: DesiredState, name?: string): App {
  const services = new Map<string, AppService>();
  const app = name ?? DEFAULT_APP_NAME;
  // Networks, volumes, configs and secrets come with issue 17's top-level keys; dataDir with the app's data directory.
  const ctx: ServiceContext = {
    app, revision: desired.revision, networks: new Map(), volumes: new Map(), configs: new Map(), secrets: new Map(), dataDir: '',
    hashes: serviceHashes(desired.services),
  };
  for (const svc of Object.keys(desired.services).sort()) services.set(svc, normalizeService(svc, desired.services[svc]!, ctx));
  checkAppServices(services);
  return {
    name: app, revision: desired.revision, services, update: updatePolicy(desired.update),
    volumes: new Map<string, AppVolume>(), networks: new Map<string, AppNetwork>(),
    configs: new Map<string, AppFile>(), secrets: new Map<string, AppFile>(), source: desired,
  };
}

/** A received `desired` payload → the app model: the protocol's checks, then normalization. */
/** A desired-state message checked (protocol) and normalized (here), once; the revision of a refused one when usable. */
export function checkApp(payload: Uint8Array | string): DesiredCheck<App> {
  return checkDesired(payload, normalizeDesired);
}

export function appFromMessage(payload: Uint8Array | string): App {
  return normalizeDesired(parseDesired(payload));
}

/**
 * The same app as another revision: only the revision label of each service changes (the spec hash
 * does not depend on it), so nothing is parsed again. `berth deploy` and the fleet tool read a file
 * once and learn the revision afterwards.
 */
export function atRevision(app: App, revision: number): App {
  const services = new Map([...app.services].map(([n, s]) => [n, { ...s, run: { ...s.run, labels: { ...s.run.labels, [REVISION_LABEL]: String(revision) } } }]));
  return { ...app, revision, services, source: { ...app.source, revision } };
}
