import path from 'node:path';
import { parseDuration } from '../duration.js';
import type { DesiredState, UpdatePolicy } from '../protocol/types.js';
import { checkDesired, parseDesired, type DesiredCheck } from '../protocol/validate.js';
import { REVISION_LABEL } from './labels.js';
import { DEFAULT_ROOT } from '../host/paths.js';
import { DEFAULT_APP_NAME, type App, type AppService, type AppUpdatePolicy, type ServiceContext } from './model.js';
import { checkReferences } from './refs.js';
import { checkAppServices, normalizeService } from './service.js';
import { serviceHashes } from './service-hash.js';
import { appResources } from './top-level.js';

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

/**
 * The app's data directory on the device: `<stateRoot>/apps/<app>`. Relative bind sources of a fleet
 * deploy resolve under it (service.ts), so a fleet file can never name an arbitrary host path by accident.
 */
export function appDataDir(stateRoot: string, app: string): string {
  return path.join(stateRoot, 'apps', app);
}

/** What normalizing needs from where it runs; every field has a default. */
export interface NormalizeOptions {
  /**
   * berth's state root on the device that runs the app (default DEFAULT_ROOT): the app's data
   * directory, where a fleet deploy's relative bind sources live, is `<stateRoot>/apps/<app>`.
   */
  readonly stateRoot?: string;
}

/**
 * Normalizes a desired state the protocol stage accepted; throws `invalid`/`usage` naming the key.
 * Top-level volumes, networks, configs and secrets first (top-level.ts), then every reference a
 * service makes to them (refs.ts), then each service with the ServiceContext built from them.
 */
export function normalizeDesired(desired: DesiredState, opts: NormalizeOptions = {}): App {
  const app = desired.name ?? DEFAULT_APP_NAME;
  const dataDir = appDataDir(opts.stateRoot ?? DEFAULT_ROOT, app);
  const resources = appResources(desired, app, dataDir);
  checkReferences(desired, resources);
  const ctx: ServiceContext = {
    app, revision: desired.revision, ...resources, dataDir,
    hashes: serviceHashes(desired.services, resources),
  };
  const services = new Map<string, AppService>();
  for (const svc of Object.keys(desired.services).sort()) services.set(svc, normalizeService(svc, desired.services[svc]!, ctx));
  checkAppServices(services);
  return { name: app, revision: desired.revision, services, update: updatePolicy(desired.update), ...resources, source: desired };
}

/** A desired-state message checked (protocol) and normalized (here), once; the revision of a refused one when usable. */
export function checkApp(payload: Uint8Array | string, opts: NormalizeOptions = {}): DesiredCheck<App> {
  return checkDesired(payload, (d) => normalizeDesired(d, opts));
}

/** A received `desired` payload → the app model: the protocol's checks, then normalization. */
export function appFromMessage(payload: Uint8Array | string, opts: NormalizeOptions = {}): App {
  return normalizeDesired(parseDesired(payload), opts);
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
