import { parseDuration } from '../duration.js';
import { CONTAINER_NAME_LABEL, defaultRunOptions, parseEnv, parseLabel, parseRestart, validateRunOptions, type RunOptions } from '../runtime/options.js';
import type { ServiceSpec } from '../protocol/types.js';
import { argsOf } from './args.js';
import { parseHealthcheck } from './healthcheck.js';
import { checkUserLabels, containerName, ownerLabels } from './labels.js';
import { DEFAULT_APP_NAME, type AppService, type ServiceContext } from './model.js';
import { balenaFeatures } from './service-balena.js';
import { checkDependencyCycles, serviceDependencies } from './service-deps.js';
import { specHash } from './service-hash.js';
import { atKey, invalidAt, keyPath, keyValueList, scalarText } from './service-key.js';
import { serviceNetworking } from './service-network.js';
import { serviceResources } from './service-resources.js';
import { serviceSecurity } from './service-security.js';
import { serviceStorage } from './service-volumes.js';

export { specHash } from './service-hash.js';

/**
 * A compose service (the desired state's field names) → the model's service, with the same parsers
 * and checks as `berth run`, so a deployment can never ask for something the CLI would refuse. Each
 * family of keys has its mapper beside this file (storage, networking, security, resources,
 * dependencies, balena's feature labels); errors name the key's path (`services.web.shm_size: …`).
 *
 * `container_name`: berth keeps naming a service's container `<service>.<hash>`, so a new container can
 * be created beside the old one (download-then-kill, rollback) without a rename dance. The name is
 * instead a DNS alias on the service's networks and a label the engine resolves (CONTAINER_NAME_LABEL),
 * so `berth ps/logs/stop NAME` find the service's current container.
 */

function environment(env: ServiceSpec['environment']): string[] {
  return env === undefined ? [] : keyValueList(env).map((e) => parseEnv(e)!);
}

/** Labels with compose's number/boolean/null values stringified as compose does (null → ''). */
function userLabels(service: string, l: ServiceSpec['labels']): Record<string, string> {
  const out = l === undefined ? {} : Array.isArray(l) ? Object.fromEntries((l as readonly string[]).map(parseLabel))
    : Object.fromEntries(Object.entries(l as Record<string, string | number | boolean | null>).map(([k, v]) => [k, scalarText(v)]));
  checkUserLabels(out, keyPath(service, 'labels'));
  return out;
}

/** The context of a service on its own, outside any app (no networks, volumes, configs; no data directory). */
export function standaloneContext(service: string, svc: ServiceSpec, revision: number): ServiceContext {
  return { app: DEFAULT_APP_NAME, revision, networks: new Map(), volumes: new Map(), configs: new Map(), secrets: new Map(), dataDir: '', hashes: new Map([[service, specHash(svc)]]) };
}

/**
 * The run options of one service; `hash` is its (folded) spec hash, naming the container. A revision
 * instead of a context means the service on its own ({@link standaloneContext}).
 */
export function serviceRunOptions(service: string, svc: ServiceSpec, context: ServiceContext | number, hash?: string): RunOptions {
  const ctx = typeof context === 'number' ? standaloneContext(service, svc, context) : context;
  const h = hash ?? ctx.hashes.get(service) ?? specHash(svc);
  const k = (key: string): string => keyPath(service, key);
  // Inside atKey: a value `berth run` would refuse is refused naming the service.
  return atKey(`service ${service}`, () => {
    const labels = userLabels(service, svc.labels);
    const balena = balenaFeatures(service, labels);
    const storage = serviceStorage(service, svc, ctx);
    const o: RunOptions = {
      ...defaultRunOptions(containerName(service, h)),
      ...(svc.command !== undefined && { cmd: argsOf(svc.command) }),
      ...(svc.entrypoint !== undefined && { entrypoint: argsOf(svc.entrypoint) }),
      env: [...balena.env, ...environment(svc.environment)],
      ...serviceResources(service, svc),
      restart: parseRestart(svc.restart ?? 'no'),
      ...storage,
      volumes: [...storage.volumes, ...balena.volumes],
      ...serviceNetworking(service, svc, ctx),
      ...serviceSecurity(service, svc, ctx),
      readOnly: svc.read_only ?? false,
      ...(svc.user !== undefined && { user: svc.user }),
      ...(svc.working_dir !== undefined && { workdir: svc.working_dir }),
      ...(svc.stop_grace_period !== undefined && { stopTimeout: Math.ceil(parseDuration(svc.stop_grace_period, k('stop_grace_period')) / 1000) }),
      labels: ownerLabels({ ...labels, ...(svc.container_name !== undefined && { [CONTAINER_NAME_LABEL]: svc.container_name }) }, service, h, ctx.revision),
    };
    return validateRunOptions(o);
  });
}

/** One service of a schema-valid desired state → the model's service (the only place a spec is parsed). */
export function normalizeService(name: string, svc: ServiceSpec, ctx: ServiceContext): AppService {
  const healthcheck = parseHealthcheck(name, svc.healthcheck);
  const hash = ctx.hashes.get(name) ?? specHash(svc);
  return {
    name, image: svc.image, hash, run: serviceRunOptions(name, svc, ctx, hash), ...(healthcheck && { healthcheck }),
    dependsOn: serviceDependencies(name, svc, ctx),
    ...(svc.platform !== undefined && { platform: svc.platform }),
    ...(svc.pull_policy !== undefined && { pullPolicy: svc.pull_policy === 'if_not_present' ? 'missing' : svc.pull_policy }),
  };
}

/** The checks that need every service: no depends_on loop, no container_name used twice. */
export function checkAppServices(services: ReadonlyMap<string, AppService>): void {
  checkDependencyCycles(services);
  const byName = new Map<string, string>();
  for (const [name, s] of services) {
    const cn = s.run.labels[CONTAINER_NAME_LABEL];
    if (cn === undefined) continue;
    const other = byName.get(cn) ?? (services.has(cn) && cn !== name ? cn : undefined);
    if (other !== undefined) throw invalidAt(keyPath(name, 'container_name'), `"${cn}" is also the name of service ${other}`);
    byName.set(cn, name);
  }
}

