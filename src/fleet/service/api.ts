import { BerthError } from '../../errors.js';
import type { FleetSigningKey } from '../../protocol/signing.js';
import type { CommandRequest } from '../../protocol/types.js';
import { sendCommand } from '../cmd.js';
import type { Inventory } from '../inventory.js';
import type { FleetLink } from '../link.js';
import type { LiveFeed } from './live.js';
import type { FilterFacets } from './device-filters.js';
import { listDevices } from './device-list.js';
import type { ListedIds } from './listed-ids.js';
import { intParam, sendJsonList, type Route } from './http.js';
import { traced } from './slice-trace.js';
import { parseLogStreamBody, streamLogs } from './log-stream.js';
import { deviceDetail, deviceSummary, rolloutSummary } from './present.js';
import { ANSWER_PAGE, rolloutView } from './rollout-view.js';
import { createRollout, moveRollout, type RolloutDeps, type RolloutRequest } from './rollouts.js';
import type { TelemetryRetention } from './store.js';

/** The /api/v1 routes besides login (docs/fleet-api.yaml is their contract). */
export interface ApiDeps extends RolloutDeps {
  readonly link: FleetLink;
  readonly signer: FleetSigningKey;
  readonly retention: TelemetryRetention;
  readonly live: LiveFeed;
  /** The ids GET /api/v1/devices lists, kept sorted. */
  readonly listed: ListedIds;
  /** GET /api/v1/device-filters' answer, kept as the view changes. */
  readonly filters: FilterFacets;
  /** Unexpected failures of work that outlives a request's answer (a log follow). */
  readonly onError: (err: unknown) => void;
}

const HOUR = 3600_000;

function time(url: URL, name: string, fallback: number): number {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return fallback;
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw new BerthError('invalid', `query parameter "${name}" must be a date-time such as 2026-12-06T02:00:00Z, not "${v}"`);
  return t;
}

export function apiRoutes(deps: ApiDeps): Route[] {
  const device = async (id: string) => {
    const d = await deps.store.getDevice(id);
    if (!d && !deps.inventory().has(id)) throw new BerthError('notFound', `no device ${id}`);
    return d ?? { id, online: false };
  };
  const rollout = (id: string, url?: URL) => rolloutView(deps.store, id, url);
  /** A write's answer: the rollout with a page of devices even when no `limit` is asked (rollout-view.ts). */
  const answer = (id: string, url: URL) => rolloutView(deps.store, id, url, ANSWER_PAGE);
  const move = (m: 'pause' | 'resume' | 'cancel'): Route => ({
    method: 'POST', path: `/api/v1/rollouts/:id/${m}`, scope: 'deploy',
    handler: async ({ params, caller, url }) => {
      await moveRollout(deps, params.id!, m, caller.name);
      return { json: await answer(params.id!, url) };
    },
  });
  return [
    {
      method: 'GET', path: '/api/v1/devices', scope: 'read',
      handler: async ({ url, res }) => {
        const page = await listDevices(deps.store, deps.listed, url);
        if (page.next !== undefined) return { json: page };
        // The whole list: too large to stringify in one turn of the event loop.
        await sendJsonList(res, 200, 'devices', page.devices);
        return undefined;
      },
    },
    { method: 'GET', path: '/api/v1/device-filters', scope: 'read', handler: async () => ({ json: traced('device-filters', () => deps.filters.fleetFilters()) }) },
    { method: 'GET', path: '/api/v1/devices/:id', scope: 'read', handler: async ({ params }) => ({ json: deviceDetail(await device(params.id!), deps.inventory()) }) },
    {
      method: 'GET', path: '/api/v1/devices/:id/telemetry', scope: 'read',
      handler: async ({ params, url }) => {
        await device(params.id!);
        const now = Date.now();
        const to = time(url, 'to', now);
        const from = time(url, 'from', to - HOUR);
        const asked = url.searchParams.get('resolution') ?? 'auto';
        if (!['auto', 'raw', 'minute'].includes(asked)) throw new BerthError('invalid', `query parameter "resolution" must be auto, raw or minute, not "${asked}"`);
        const resolution = asked === 'auto' ? (from >= now - deps.retention.rawMs ? 'raw' : 'minute') : (asked as 'raw' | 'minute');
        const points = (await deps.store.telemetry(params.id!, from, to, resolution)).map((p) => ({ ...p, time: new Date(p.time).toISOString() }));
        return { json: { resolution, points } };
      },
    },
    {
      method: 'GET', path: '/api/v1/devices/:id/events', scope: 'read',
      handler: async ({ params, url }) => {
        await device(params.id!);
        const before = url.searchParams.has('before') ? intParam(url, 'before', 0, 0, Number.MAX_SAFE_INTEGER) : undefined;
        const events = await deps.store.events({ device: params.id!, limit: intParam(url, 'limit', 100, 1, 1000), ...(before !== undefined && { before }) });
        return { json: { events: events.map(eventJson) } };
      },
    },
    {
      method: 'POST', path: '/api/v1/devices/:id/commands', scope: 'deploy',
      handler: async ({ params, body }) => {
        await device(params.id!);
        const b = (await body()) as (CommandRequest & { timeoutMs?: unknown }) | undefined;
        if (typeof b !== 'object' || b === null) throw new BerthError('invalid', 'command request: expected a JSON object with "action"');
        const { timeoutMs, ...request } = b;
        if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && (timeoutMs as number) >= 1000 && (timeoutMs as number) <= 120_000)) throw new BerthError('invalid', 'command request: "timeoutMs" must be an integer in [1000, 120000]');
        return { json: await sendCommand(deps.link, params.id!, request, (timeoutMs as number | undefined) ?? 30_000, deps.signer) };
      },
    },
    {
      // Sends commands to the device (logs with follow, logs-stop): deploy scope, a POST (CSRF-checked) though it only reads.
      method: 'POST', path: '/api/v1/devices/:id/logs/follow', scope: 'deploy',
      handler: async ({ params, body, res }) => {
        await device(params.id!);
        await streamLogs({ link: deps.link, signer: deps.signer, onError: deps.onError }, parseLogStreamBody(params.id!, await body()), res);
        return undefined;
      },
    },
    { method: 'GET', path: '/api/v1/rollouts', scope: 'read', handler: async ({ url }) => ({ json: { rollouts: (await deps.store.listRollouts(intParam(url, 'limit', 50, 1, 500))).map(rolloutSummary) } }) },
    {
      method: 'POST', path: '/api/v1/rollouts', scope: 'deploy',
      handler: async ({ body, caller, url }) => {
        const r = await createRollout(deps, ((await body()) ?? {}) as RolloutRequest, caller.name);
        return { status: 201, json: await answer(r.id, url), headers: { location: `/api/v1/rollouts/${r.id}` } };
      },
    },
    { method: 'GET', path: '/api/v1/rollouts/:id', scope: 'read', handler: async ({ params, url }) => ({ json: await rollout(params.id!, url) }) },
    move('pause'), move('resume'), move('cancel'),
    {
      method: 'GET', path: '/api/v1/events', scope: 'read',
      handler: async ({ url }) => {
        const before = url.searchParams.has('before') ? intParam(url, 'before', 0, 0, Number.MAX_SAFE_INTEGER) : undefined;
        return { json: { events: (await deps.store.events({ limit: intParam(url, 'limit', 100, 1, 1000), ...(before !== undefined && { before }) })).map(eventJson) } };
      },
    },
    {
      method: 'GET', path: '/api/v1/stream', scope: 'read',
      handler: async ({ req, res }) => {
        deps.live.attach(req, res);
        return undefined;
      },
    },
  ];
}

export function eventJson(e: import('./store.js').EventRecord): Record<string, unknown> {
  return { seq: e.seq, time: new Date(e.time).toISOString(), device: e.device ?? null, rollout: e.rollout ?? null, type: e.type, data: e.data };
}
