import { toBerthError } from '../../errors.js';
import type { AppIdentity } from '../../store/supervisor-keys.js';
import type { SupervisorBackend } from './backend.js';
import { SUPERVISOR_API_PORT } from './env.js';

/**
 * balena's supervisor API, the subset berth gives (docs: "Interacting with the balena Supervisor"):
 * paths, authentication and response shapes as balena-supervisor answers them, so an app's client code
 * runs unchanged. Pure request → response; server.ts does the HTTP.
 *
 * Authentication: every path but `/ping` needs the key (`?apikey=` or `Authorization: Bearer`), else
 * 401. A key is scoped to its app: asking about or acting on another app id is 401 too, as balena's
 * scoped keys are. Device-wide reads (`/v1/device`, `/v2/version`…) are open to any valid key.
 */

export interface ApiRequest {
  readonly method: string;
  /** The path without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly authorization?: string;
  /** A JSON object or a urlencoded form, fields as given. */
  readonly body: Readonly<Record<string, unknown>>;
}

export interface ApiResponse {
  readonly status: number;
  /** A string is sent as text/plain, anything else as JSON. */
  readonly body: unknown;
  /** Run after the response is sent (a reboot must not cut its own answer). */
  readonly after?: () => void;
}

export type PowerAction = 'reboot' | 'shutdown';

export interface RouteContext {
  readonly backend: SupervisorBackend;
  readonly keys: { byKey(key: string): AppIdentity | undefined; deviceUuid(): string };
  /** agent.yaml `supervisorApi.allowPower`: undefined = `/v1/reboot` and `/v1/shutdown` are refused. */
  readonly power?: (action: PowerAction) => void;
}

const UNAUTHORIZED: ApiResponse = { status: 401, body: { status: 'failed', message: 'Unauthorized' } };
const failed = (status: number, message: string): ApiResponse => ({ status, body: { status: 'failed', message } });
const OK: ApiResponse = { status: 200, body: 'OK' };

/** The key of a request: `apikey` in the query, else a Bearer token. */
function keyOf(req: ApiRequest): string | undefined {
  const q = req.query.get('apikey');
  if (q !== null && q !== '') return q;
  const m = /^Bearer\s+(\S+)$/i.exec(req.authorization ?? '');
  return m?.[1];
}

/** balena's checkInt: a positive integer, from a number or a decimal string. */
function intOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** balena's container status names: Running, Installed (created, never started), else docker's state. */
const statusOf = (state: string | undefined): string => (state === 'running' ? 'Running' : state === 'created' || state === undefined ? 'Installed' : state);

type Handler = (req: ApiRequest, who: AppIdentity, ctx: RouteContext, params: readonly string[]) => Promise<ApiResponse> | ApiResponse;

/** An action on one's own app, by app id: 400 for a bad id, 401 for another app's. */
const scoped = (appIdOf: (req: ApiRequest, params: readonly string[]) => unknown, act: (req: ApiRequest, who: AppIdentity, ctx: RouteContext) => Promise<ApiResponse>): Handler =>
  async (req, who, ctx, params) => {
    const raw = appIdOf(req, params);
    const appId = intOf(raw);
    if (appId === undefined) return raw === undefined ? { status: 400, body: 'Missing app id' } : failed(400, 'Invalid app id');
    if (appId !== who.appId) return UNAUTHORIZED;
    try {
      return await act(req, who, ctx);
    } catch (err) {
      const e = toBerthError(err);
      return failed(e.category === 'notFound' ? 404 : 503, e.message);
    }
  };

/** The v2 service actions: `serviceName` in the body names the service (balena's `imageId` is not kept by berth). */
const serviceAction = (action: 'restartService' | 'stopService' | 'startService'): Handler =>
  scoped((_req, p) => p[0], async (req, who, ctx) => {
    const service = req.body.serviceName;
    if (typeof service !== 'string' || service === '') return failed(400, 'This endpoint requires one of imageId or serviceName; berth knows services by serviceName');
    await ctx.backend[action](who.app, service);
    return OK;
  });

function device(ctx: RouteContext): ApiResponse {
  const b = ctx.backend;
  const s = b.status();
  return {
    status: 200,
    body: {
      api_port: SUPERVISOR_API_PORT,
      commit: s.revision > 0 ? String(s.revision) : null,
      ip_address: b.ipAddresses(),
      mac_address: b.macAddress() ?? null,
      os_version: b.osVersion(),
      supervisor_version: b.version,
      update_pending: s.applying,
      update_failed: s.failed,
      update_downloaded: false,
      status: s.applying ? 'Installing' : 'Idle',
      download_progress: null,
    },
  };
}

function applicationsState(who: AppIdentity, ctx: RouteContext): ApiResponse {
  const services = ctx.backend.services(who.app);
  if (services.length === 0) return { status: 200, body: {} };
  const commit = String(ctx.backend.status().revision);
  return {
    status: 200,
    body: { [who.app]: { appId: who.appId, commit, services: Object.fromEntries(services.map((s) => [s.name, { status: statusOf(s.container?.state), releaseId: Number(commit), downloadProgress: null }])) } },
  };
}

function stateStatus(who: AppIdentity, ctx: RouteContext): ApiResponse {
  const s = ctx.backend.status();
  const services = ctx.backend.services(who.app);
  return {
    status: 200,
    body: {
      status: 'success',
      appState: s.applying ? 'applying' : 'applied',
      overallDownloadProgress: null,
      containers: services.filter((x) => x.container).map((x) => ({
        status: statusOf(x.container!.state), serviceName: x.name, appId: who.appId, containerId: x.container!.id, createdAt: new Date(x.container!.createdAt).toISOString(),
      })),
      images: services.map((x) => ({ name: x.image, appId: who.appId, serviceName: x.name, status: x.container ? 'Downloaded' : 'Downloading', downloadProgress: null })),
      release: s.revision > 0 ? String(s.revision) : null,
    },
  };
}

function power(action: PowerAction): Handler {
  return (_req, _who, ctx) => ctx.power === undefined
    ? { status: 403, body: { Data: '', Error: `${action} through the supervisor API is off on this device (agent.yaml supervisorApi: {allowPower: true} turns it on)` } }
    : { status: 202, body: { Data: 'OK', Error: null }, after: () => ctx.power!(action) };
}

const ROUTES: ReadonlyArray<readonly [string, RegExp, Handler]> = [
  ['GET', /^\/v1\/healthy$/, () => ({ status: 200, body: '' })],
  ['GET', /^\/v2\/version$/, (_r, _w, ctx) => ({ status: 200, body: { status: 'success', version: ctx.backend.version } })],
  ['GET', /^\/v1\/device$/, (_r, _w, ctx) => device(ctx)],
  ['GET', /^\/v2\/device\/name$/, (_r, _w, ctx) => ({ status: 200, body: { status: 'success', deviceName: ctx.backend.deviceName } })],
  ['GET', /^\/v2\/applications\/state$/, (_r, who, ctx) => applicationsState(who, ctx)],
  ['GET', /^\/v2\/state\/status$/, (_r, who, ctx) => stateStatus(who, ctx)],
  ['POST', /^\/v1\/restart$/, scoped((req) => req.body.appId, async (_req, who, ctx) => (await ctx.backend.restartApp(who.app), OK))],
  ['POST', /^\/v2\/applications\/([^/]+)\/restart$/, scoped((_req, p) => p[0], async (_req, who, ctx) => (await ctx.backend.restartApp(who.app), OK))],
  ['POST', /^\/v2\/applications\/([^/]+)\/restart-service$/, serviceAction('restartService')],
  ['POST', /^\/v2\/applications\/([^/]+)\/stop-service$/, serviceAction('stopService')],
  ['POST', /^\/v2\/applications\/([^/]+)\/start-service$/, serviceAction('startService')],
  ['POST', /^\/v1\/reboot$/, power('reboot')],
  ['POST', /^\/v1\/shutdown$/, power('shutdown')],
];

/** Answers one request. Never throws: an unexpected failure is a 503 with its message. */
export async function handleRequest(req: ApiRequest, ctx: RouteContext): Promise<ApiResponse> {
  const path = req.path.length > 1 ? req.path.replace(/\/+$/, '') : req.path;
  if (path === '/ping' && req.method === 'GET') return OK;
  const key = keyOf(req);
  const who = key === undefined ? undefined : ctx.keys.byKey(key);
  if (who === undefined) return UNAUTHORIZED;
  for (const [method, re, handler] of ROUTES) {
    const m = re.exec(path);
    if (m === null) continue;
    if (method !== req.method) return failed(405, `${req.method} is not allowed on ${path}`);
    try {
      return await handler(req, who, ctx, m.slice(1));
    } catch (err) {
      return failed(503, toBerthError(err).message);
    }
  }
  return failed(404, `${path} is not part of the supervisor API subset berth gives`);
}
