import crypto from 'node:crypto';
import { parseDuration } from '../duration.js';
import { BerthError } from '../errors.js';
import {
  defaultRunOptions, parseBytes, parseCpus, parseDevice, parseEnv, parseLabel, parseRestart, parseVolume, validateRunOptions, type NetworkMode, type RunOptions,
} from '../runtime/options.js';
import type { HealthcheckSpec, ServiceSpec } from '../protocol/types.js';

/**
 * A compose service (the desired state's field names) → berth's run options, with the same parsers
 * and checks as `berth run`, so a deployment can never ask for something the CLI would refuse.
 */

/** Labels berth sets on the containers it deploys; users may not set `berth.*` labels except the priority. */
export const SERVICE_LABEL = 'berth.service';
export const SPEC_LABEL = 'berth.spec';
export const REVISION_LABEL = 'berth.revision';
const USER_BERTH_LABELS = new Set(['berth.priority']);

/** Compose's string form of command/entrypoint: split like a shell would, without running one. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: '"' | "'" | undefined;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new BerthError('invalid', `unterminated ${quote} quote in "${text}"`);
  if (inWord) out.push(cur);
  return out;
}

const args = (v: string | readonly string[] | undefined): string[] | undefined => (v === undefined ? undefined : typeof v === 'string' ? splitArgs(v) : [...v]);

const size = (v: string | number | undefined, what: string): number | undefined => (v === undefined ? undefined : typeof v === 'number' ? v : parseBytes(v, what));

function environment(env: ServiceSpec['environment']): string[] {
  if (env === undefined) return [];
  if (Array.isArray(env)) return env.map((e) => parseEnv(e)!);
  return Object.entries(env as Record<string, string | number | boolean | null>).map(([k, v]) => parseEnv(`${k}=${v === null ? '' : String(v)}`)!);
}

function labels(l: ServiceSpec['labels']): Record<string, string> {
  const entries = l === undefined ? [] : Array.isArray(l) ? l.map(parseLabel) : Object.entries(l as Record<string, string>);
  for (const [k] of entries) {
    if (k.startsWith('berth.') && !USER_BERTH_LABELS.has(k)) throw new BerthError('invalid', `label "${k}" is reserved for berth`);
  }
  return Object.fromEntries(entries);
}

/** A stable hash of what the service asks for: same hash, same container (kept across revisions). */
export function specHash(svc: ServiceSpec): string {
  const canonical = (v: unknown): unknown =>
    v === null || typeof v !== 'object' ? v : Array.isArray(v) ? v.map(canonical) : Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  return crypto.createHash('sha256').update(JSON.stringify(canonical(svc))).digest('hex').slice(0, 12);
}

/** Whether a container's labels say berth deployed it for `service` (with this spec, when `hash` is given). */
export const deployedFor = (labels: Readonly<Record<string, string>>, service: string, hash?: string): boolean =>
  labels[SERVICE_LABEL] === service && (hash === undefined || labels[SPEC_LABEL] === hash);

/** The container name for a service spec: unique per (service, spec), readable in `berth ps`. */
export const containerName = (service: string, hash: string): string => `${service}.${hash}`;

export function serviceRunOptions(service: string, svc: ServiceSpec, revision: number): RunOptions {
  const field = (f: string): string => `services.${service}.${f}`;
  const hash = specHash(svc);
  const memory = size(svc.mem_limit, field('mem_limit'));
  const network = (svc.network_mode ?? 'private') as NetworkMode;
  const o: RunOptions = {
    ...defaultRunOptions(containerName(service, hash)),
    ...(args(svc.command) && { cmd: args(svc.command) }),
    ...(args(svc.entrypoint) && { entrypoint: args(svc.entrypoint) }),
    env: environment(svc.environment),
    ...(memory !== undefined && { memory }),
    ...(svc.mem_reservation !== undefined && { memoryReservation: size(svc.mem_reservation, field('mem_reservation')) }),
    ...(svc.memswap_limit !== undefined && { memorySwap: svc.memswap_limit === -1 ? -1 : size(svc.memswap_limit, field('memswap_limit')) }),
    ...(svc.cpus !== undefined && { cpus: parseCpus(String(svc.cpus)) }),
    ...(svc.cpu_shares !== undefined && { cpuShares: svc.cpu_shares }),
    ...(svc.pids_limit !== undefined && { pidsLimit: svc.pids_limit }),
    restart: parseRestart(svc.restart ?? 'no'),
    volumes: (svc.volumes ?? []).map(parseVolume),
    devices: (svc.devices ?? []).map(parseDevice),
    network,
    readOnly: svc.read_only ?? false,
    ...(svc.user !== undefined && { user: svc.user }),
    ...(svc.working_dir !== undefined && { workdir: svc.working_dir }),
    ...(svc.stop_grace_period !== undefined && { stopTimeout: Math.ceil(parseDuration(svc.stop_grace_period, field('stop_grace_period')) / 1000) }),
    labels: { ...labels(svc.labels), [SERVICE_LABEL]: service, [SPEC_LABEL]: hash, [REVISION_LABEL]: String(revision) },
  };
  try {
    return validateRunOptions(o);
  } catch (err) {
    if (err instanceof BerthError) throw new BerthError(err.category, `service ${service}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** A healthcheck in runnable form; undefined when the service has none or disables it. */
export interface Healthcheck {
  /** argv to exec inside the container. */
  readonly argv: readonly string[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly startPeriodMs: number;
}

export function parseHealthcheck(service: string, h: HealthcheckSpec | undefined): Healthcheck | undefined {
  if (h === undefined || h.disable === true || h.test === undefined) return undefined;
  const test = typeof h.test === 'string' ? ['CMD-SHELL', h.test] : [...h.test];
  const [kind, ...rest] = test;
  if (kind === 'NONE') return undefined;
  let argv: string[];
  if (kind === 'CMD' && rest.length > 0) argv = rest;
  else if (kind === 'CMD-SHELL' && rest.length === 1) argv = ['/bin/sh', '-c', rest[0]!];
  else throw new BerthError('invalid', `services.${service}.healthcheck.test: use ["CMD", args…], ["CMD-SHELL", "command"], ["NONE"] or a string`);
  const d = (v: string | undefined, def: number, f: string): number => (v === undefined ? def : parseDuration(v, `services.${service}.healthcheck.${f}`));
  return { argv, intervalMs: d(h.interval, 30_000, 'interval'), timeoutMs: d(h.timeout, 30_000, 'timeout'), retries: h.retries ?? 3, startPeriodMs: d(h.start_period, 0, 'start_period') };
}
