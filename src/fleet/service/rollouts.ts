import crypto from 'node:crypto';
import path from 'node:path';
import { composeApp } from '../../compose/file.js';
import type { App } from '../../compose/model.js';
import { normalizeDesired } from '../../compose/normalize.js';
import { checkDeclaredVolumes } from '../../compose/refs.js';
import { checkDesiredShape } from '../../protocol/validate.js';
import { loadComposeYaml } from '../../compose/load-yaml.js';
import { parseDuration } from '../../duration.js';
import { BerthError } from '../../errors.js';
import type { RegistryAccess } from '../../image/registry/open.js';
import { planDeploy } from '../deploy.js';
import type { Inventory } from '../inventory.js';
import { resolveDigest } from '../resolve.js';
import { parseRate } from '../rollout.js';
import type { FleetView } from '../view.js';
import type { FleetBus } from './bus.js';
import type { FleetStore, RolloutRecord, RolloutState } from './store.js';

/** `POST /api/v1/rollouts`' body (docs/fleet-api.yaml RolloutRequest), as received: checked by createRollout. */
export interface RolloutRequest {
  readonly compose?: unknown;
  /** Instead of `compose`: the app as `berth fleet deploy --server` read it (a desired state without revision). */
  readonly app?: unknown;
  readonly name?: unknown;
  readonly devices?: unknown;
  readonly group?: unknown;
  readonly all?: unknown;
  readonly rate?: unknown;
  readonly abortAfterPct?: unknown;
  readonly minDevices?: unknown;
  readonly timeout?: unknown;
}

export interface RolloutDeps {
  readonly store: FleetStore;
  readonly view: FleetView;
  readonly inventory: () => Inventory;
  readonly bus: FleetBus;
  /** Registry credentials and CAs for resolving tags (the service's state root). */
  readonly registry: RegistryAccess;
  readonly tlsVerify: boolean;
  /** Where a rollout's compose file is taken to live: relative paths in it resolve here. */
  readonly dataDir: string;
}

const invalid = (key: string, what: string): BerthError => new BerthError('invalid', `rollout request: "${key}" ${what}`);
const str = (v: unknown, key: string): string | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw invalid(key, 'must be a non-empty string');
  return v;
};

/**
 * Creates a rollout record: the compose text read and normalized as `berth fleet deploy` reads a file
 * (fleet mode; interpolation sees no environment of the service, only the file's own defaults), the
 * devices selected as the CLI selects them, each planned at its next revision, and every service's
 * image tag resolved to its digest here, once: the record holds the desired state every device will
 * be sent, with `image@sha256:…`. The driver (driver.ts) sends it from then on.
 */
export async function createRollout(deps: RolloutDeps, req: RolloutRequest, createdBy: string, now = Date.now()): Promise<RolloutRecord> {
  if (typeof req !== 'object' || req === null) throw new BerthError('invalid', 'rollout request: expected a JSON object');
  const compose = str(req.compose, 'compose');
  if ((compose === undefined) === (req.app === undefined)) throw invalid('compose', 'or "app" is required, not both: the compose file\'s YAML text, or the app as berth fleet deploy --server sends it');
  let devices: string[] | undefined;
  if (req.devices !== undefined) {
    if (!Array.isArray(req.devices) || req.devices.some((d) => typeof d !== 'string')) throw invalid('devices', 'must be an array of device ids');
    devices = req.devices as string[];
  }
  if (req.all !== undefined && typeof req.all !== 'boolean') throw invalid('all', 'must be true or false');
  const group = str(req.group, 'group');
  const rate = str(req.rate, 'rate');
  if (req.abortAfterPct !== undefined && !(typeof req.abortAfterPct === 'number' && req.abortAfterPct > 0 && req.abortAfterPct <= 100)) throw invalid('abortAfterPct', 'must be a number in (0, 100]');
  if (req.minDevices !== undefined && !(Number.isSafeInteger(req.minDevices) && (req.minDevices as number) >= 1)) throw invalid('minDevices', 'must be an integer ≥ 1');
  const timeout = str(req.timeout, 'timeout') ?? '10m';
  const policy = {
    ...(rate !== undefined && { ratePerMin: parseRate(rate) }),
    ...(req.abortAfterPct !== undefined && { abortAfterPct: req.abortAfterPct as number }),
    minDevices: (req.minDevices as number | undefined) ?? 1,
    timeoutMs: parseDuration(timeout, 'timeout'),
  };

  const app = compose !== undefined
    ? composeApp(await loadComposeYaml(compose, 'the rollout\'s compose file'), path.join(deps.dataDir, 'compose.yaml'), { mode: 'fleet', env: {}, stateRoot: deps.dataDir })
    : appFromDesired(req.app, deps.dataDir);
  const selected = deps.inventory().select({ ...(devices && { devices }), ...(group !== undefined && { group }), all: req.all === true });
  // Revisions are planned from what the broker holds, and above what an unfinished rollout has planned
  // for the device but not yet published (or published without the echo back yet).
  const open = await deps.store.openRevisions();
  const plan = planDeploy(deps.view, selected).map((p) => ({ device: p.device, revision: Math.max(p.revision, (open.get(p.device) ?? 0) + 1) }));

  const images: Record<string, string> = {};
  const services: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(app.source.services)) {
    let pinned: { name: string; digest: string };
    try {
      pinned = await resolveDigest(deps.registry, s.image, deps.tlsVerify);
    } catch (err) {
      const e = err instanceof BerthError ? err : new BerthError('network', (err as Error).message, { cause: err });
      throw new BerthError(e.category, `service "${name}": resolving ${s.image} to a digest: ${e.message}`, { cause: err, ...(e.hint !== undefined && { hint: e.hint }) });
    }
    images[name] = `${pinned.name}@${pinned.digest}`;
    services[name] = { ...s, image: images[name] };
  }
  const { revision: _revision, ...source } = app.source;
  const id = `r-${new Date(now).toISOString().slice(0, 10).replaceAll('-', '')}-${crypto.randomBytes(4).toString('hex')}`;
  const record = await deps.store.createRollout({
    id, name: str(req.name, 'name') ?? app.source.name ?? 'app', state: 'running', createdAt: now, createdBy, policy, images,
    body: JSON.stringify({ ...source, services }),
  }, plan);
  deps.bus.emit({ type: 'event', event: await deps.store.addEvent({ time: now, rollout: id, type: 'rollout-created', data: { name: record.name, devices: plan.length, images, createdBy } }) });
  deps.bus.emit({ type: 'rollout', id });
  return record;
}

/**
 * The app of a request's `app`: a desired state the client read from its compose file (its .env,
 * configs and relative paths settled there, as `berth fleet deploy` settles them), checked and
 * normalized here by the code every device runs, as composeApp does for a file.
 */
function appFromDesired(value: unknown, stateRoot: string): App {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('app', 'must be an object (a desired state without revision)');
  const desired = checkDesiredShape({ ...value, revision: 1 }, 'rollout request "app"');
  const app = normalizeDesired(desired, { stateRoot });
  checkDeclaredVolumes(desired, app);
  return app;
}

const MOVES: Readonly<Record<'pause' | 'resume' | 'cancel', { from: readonly RolloutState[]; to: RolloutState }>> = {
  pause: { from: ['running'], to: 'paused' },
  resume: { from: ['paused'], to: 'running' },
  cancel: { from: ['running', 'paused'], to: 'cancelled' },
};

/** Pause, resume or cancel; `conflict` naming the state it is in when the move does not apply. */
export async function moveRollout(deps: Pick<RolloutDeps, 'store' | 'bus'>, id: string, move: keyof typeof MOVES, by: string, now = Date.now()): Promise<RolloutRecord> {
  const { from, to } = MOVES[move];
  const moved = await deps.store.transitionRollout(id, from, to, now);
  if (!moved) {
    const r = await deps.store.getRollout(id);
    if (!r) throw new BerthError('notFound', `no rollout ${id}`);
    throw new BerthError('conflict', `rollout ${id} is ${r.state}: only a ${from.join(' or ')} rollout can be ${to}`);
  }
  deps.bus.emit({ type: 'event', event: await deps.store.addEvent({ time: now, rollout: id, type: `rollout-${to}`, data: { by } }) });
  deps.bus.emit({ type: 'rollout', id });
  return moved;
}
