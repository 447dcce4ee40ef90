import crypto from 'node:crypto';
import { parseDuration } from '../duration.js';
import { BerthError } from '../errors.js';
import {
  defaultRunOptions, parseBytes, parseCpus, parseDevice, parseEnv, parseLabel, parseRestart, parseVolume, validateRunOptions, type NetworkMode, type RunOptions,
} from '../runtime/options.js';
import type { ServiceSpec } from '../protocol/types.js';
import { argsOf } from './args.js';
import { parseHealthcheck } from './healthcheck.js';
import { checkUserLabels, containerName, ownerLabels } from './labels.js';
import type { AppService, ServiceContext } from './model.js';

/**
 * A compose service (the desired state's field names) → the model's service, with the same parsers
 * and checks as `berth run`, so a deployment can never ask for something the CLI would refuse.
 */

const size = (v: string | number | undefined, what: string): number | undefined => (v === undefined ? undefined : typeof v === 'number' ? v : parseBytes(v, what));

function environment(env: ServiceSpec['environment']): string[] {
  if (env === undefined) return [];
  if (Array.isArray(env)) return env.map((e) => parseEnv(e)!);
  return Object.entries(env as Record<string, string | number | boolean | null>).map(([k, v]) => parseEnv(`${k}=${v === null ? '' : String(v)}`)!);
}

function labels(service: string, l: ServiceSpec['labels']): Record<string, string> {
  const out = Object.fromEntries(l === undefined ? [] : Array.isArray(l) ? l.map(parseLabel) : Object.entries(l as Record<string, string>));
  checkUserLabels(out, `services.${service}.labels`);
  return out;
}

/**
 * A stable hash of what the service asks for: same hash, same container (kept across revisions).
 * Computed from the compose fields as written, so containers deployed by earlier berth versions keep
 * matching.
 */
export function specHash(svc: ServiceSpec): string {
  const canonical = (v: unknown): unknown =>
    v === null || typeof v !== 'object' ? v : Array.isArray(v) ? v.map(canonical) : Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return crypto.createHash('sha256').update(JSON.stringify(canonical(svc))).digest('hex').slice(0, 12);
}

export function serviceRunOptions(service: string, svc: ServiceSpec, revision: number): RunOptions {
  const field = (f: string): string => `services.${service}.${f}`;
  const hash = specHash(svc);
  // Inside the try: a value `berth run` would refuse is refused naming the service.
  try {
    const o: RunOptions = {
      ...defaultRunOptions(containerName(service, hash)),
      ...(svc.command !== undefined && { cmd: argsOf(svc.command) }),
      ...(svc.entrypoint !== undefined && { entrypoint: argsOf(svc.entrypoint) }),
      env: environment(svc.environment),
      ...(svc.mem_limit !== undefined && { memory: size(svc.mem_limit, field('mem_limit')) }),
      ...(svc.mem_reservation !== undefined && { memoryReservation: size(svc.mem_reservation, field('mem_reservation')) }),
      ...(svc.memswap_limit !== undefined && { memorySwap: svc.memswap_limit === -1 ? -1 : size(svc.memswap_limit, field('memswap_limit')) }),
      ...(svc.cpus !== undefined && { cpus: parseCpus(String(svc.cpus)) }),
      ...(svc.cpu_shares !== undefined && { cpuShares: svc.cpu_shares }),
      ...(svc.pids_limit !== undefined && { pidsLimit: svc.pids_limit }),
      restart: parseRestart(svc.restart ?? 'no'),
      volumes: (svc.volumes ?? []).map(parseVolume),
      devices: (svc.devices ?? []).map(parseDevice),
      network: (svc.network_mode ?? 'private') as NetworkMode,
      readOnly: svc.read_only ?? false,
      ...(svc.user !== undefined && { user: svc.user }),
      ...(svc.working_dir !== undefined && { workdir: svc.working_dir }),
      ...(svc.stop_grace_period !== undefined && { stopTimeout: Math.ceil(parseDuration(svc.stop_grace_period, field('stop_grace_period')) / 1000) }),
      labels: ownerLabels(labels(service, svc.labels), service, hash, revision),
    };
    return validateRunOptions(o);
  } catch (err) {
    if (err instanceof BerthError && !err.message.startsWith(field(''))) throw new BerthError(err.category, `service ${service}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** One service of a schema-valid desired state → the model's service (the only place a spec is parsed). */
export function normalizeService(name: string, svc: ServiceSpec, ctx: ServiceContext): AppService {
  const healthcheck = parseHealthcheck(name, svc.healthcheck);
  return { name, image: svc.image, hash: specHash(svc), run: serviceRunOptions(name, svc, ctx.revision), ...(healthcheck && { healthcheck }), dependsOn: new Map() };
}
