import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import { BerthError } from '../../errors.js';
import type { RegistryAccess } from '../../image/registry/open.js';
import type { FleetSigningKey } from '../../protocol/signing.js';
import type { FleetFile } from '../fleet-file.js';
import { Inventory } from '../inventory.js';
import { FleetLink, type FleetBrokerOptions } from '../link.js';
import { FleetView } from '../view.js';
import { apiRoutes } from './api.js';
import { authenticate, checkCsrf, login, logout } from './auth.js';
import { FleetBus } from './bus.js';
import { FilterFacets } from './device-filters.js';
import { RolloutDriver } from './driver.js';
import { Forbidden, compileRoutes, readJsonBody, scopeAllows, sendError, sendJson, type RouteResult } from './http.js';
import { Ingest } from './ingest.js';
import { ListedIds } from './listed-ids.js';
import { LiveFeed } from './live.js';
import { renderMetrics } from './metrics.js';
import { DbStats, reportOnSignal } from './db-stats.js';
import { openFleetStore } from './open-store.js';
import { applySecurityHeaders } from './headers.js';
import { SliceTrace, tracedAsync } from './slice-trace.js';
import { serveStatic } from './static.js';
import { tokenRoutes } from './token-routes.js';
import type { TelemetryRetention } from './store.js';

/** `berth fleet serve`, parsed (src/cli/fleet-serve.ts builds it from flags). */
export interface ServeOptions {
  /** HOST:PORT (`[::1]:8080` for IPv6; port 0 takes a free one). */
  readonly listen: string;
  readonly dataDir: string;
  readonly dbUrl?: string;
  /** The broker; its shareGroup is the instances' MQTT 5 share group. */
  readonly broker: FleetBrokerOptions;
  readonly signer: FleetSigningKey;
  readonly fleetFile: FleetFile;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  readonly webDir: string;
  readonly registry: RegistryAccess;
  readonly tlsVerify: boolean;
  readonly retention: TelemetryRetention;
  readonly log: (line: string) => void;
  /** Write a long-task trace to this file (slice-trace.ts; BERTH_FLEET_TRACE): for benchmarks, off by default. */
  readonly traceFile?: string;
}

export interface FleetService {
  /** http(s)://HOST:PORT as bound. */
  readonly url: string;
  close(): Promise<void>;
}

const PRUNE_EVERY_MS = 60_000;

export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new BerthError('usage', `--listen takes HOST:PORT (or [IPv6]:PORT), not "${text}"`);
  return { host: m[1] ?? m[2]!, port };
}

/**
 * Starts one service instance: the store (migrated), the broker connection with the retained state
 * read in, the rollout driver resuming unfinished rollouts, and the HTTP(S) server. Several instances
 * may share one PostgreSQL database and broker.
 */
export async function startFleetService(opts: ServeOptions): Promise<FleetService> {
  const { host, port } = parseListen(opts.listen);
  const instance = `${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const onError = (err: unknown): void => opts.log(`error: ${err instanceof Error ? err.message : String(err)}`);
  // BERTH_DB_STATS=1: count the database's round trips, printed on SIGUSR2 (db-stats.ts; issue 21's bench).
  const stats = process.env.BERTH_DB_STATS ? new DbStats() : undefined;
  const store = await openFleetStore(opts.dataDir, opts.dbUrl, stats);
  const closers: Array<() => Promise<void> | void> = [() => store.close()];
  if (stats) closers.push(reportOnSignal(stats, opts.log));
  const close = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await Promise.resolve(c()).catch(onError);
  };
  try {
    if (opts.traceFile !== undefined) {
      const trace = new SliceTrace(opts.traceFile);
      closers.push(() => trace.close());
    }
    const bus = new FleetBus();
    const view = new FleetView();
    const link = await FleetLink.connect(opts.broker);
    closers.push(() => link.close());
    // One inventory for the service's life: it keeps the fleet's ids sorted as devices appear (a page of
    // GET /api/v1/devices no longer sorts the fleet), which an inventory per request would redo each time.
    const theInventory = new Inventory(opts.fleetFile, view);
    const inventory = (): Inventory => theInventory;
    // Before the ingest starts: the menus count every device as its retained state arrives.
    const filters = new FilterFacets(theInventory, view);
    closers.push(() => filters.close());
    const ingest = new Ingest(store, link, view, bus, onError);
    await ingest.start();
    closers.push(() => ingest.stop());
    const listed = await ListedIds.load(store, theInventory);
    const driver = new RolloutDriver({ store, link, view, bus, signer: opts.signer, instance, onError, singleInstance: store.dialect === 'sqlite' });
    await driver.start();
    closers.push(() => driver.stop());
    const live = new LiveFeed(store, bus, inventory, onError);
    closers.push(() => live.close());
    const prune = setInterval(() => void store.pruneTelemetry(opts.retention, Date.now()).catch(onError), PRUNE_EVERY_MS);
    closers.push(() => clearInterval(prune));

    const routes = compileRoutes([...apiRoutes({
      store, view, inventory, bus, registry: opts.registry, tlsVerify: opts.tlsVerify, dataDir: opts.dataDir, link, signer: opts.signer, retention: opts.retention, live, listed, filters, onError,
    }), ...tokenRoutes(store)]);
    const secure = opts.tls !== undefined;
    const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
      const url = new URL(req.url ?? '/', 'http://service');
      const p = url.pathname;
      if (!p.startsWith('/api/') && p !== '/metrics') return serveStatic(opts.webDir, req, res, p);
      if (p === '/api/v1/login' && req.method === 'POST') {
        const { setCookie, session } = await login(store, await readJsonBody(req), secure);
        return sendJson(res, 200, session, { 'set-cookie': setCookie });
      }
      const caller = await authenticate(store, req);
      if (req.method !== 'GET' && req.method !== 'HEAD') checkCsrf(caller, req);
      if (p === '/api/v1/logout' && req.method === 'POST') {
        res.writeHead(204, { 'set-cookie': await logout(store, req) });
        return void res.end();
      }
      if (p === '/api/v1/session' && req.method === 'GET') return sendJson(res, 200, { scope: caller.scope, ...(caller.csrf !== undefined && { csrfToken: caller.csrf }) });
      if (p === '/metrics' && req.method === 'GET') {
        const text = await renderMetrics(store, inventory());
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
        return void res.end(text);
      }
      let pathMatched = false;
      for (const r of routes) {
        const params = r.match(p);
        if (!params) continue;
        pathMatched = true;
        if (r.method !== req.method) continue;
        if (!scopeAllows(caller.scope, r.scope)) throw new Forbidden(`${req.method} ${p} needs a token of scope ${r.scope} (this one is ${caller.scope})`);
        const result: RouteResult = await r.handler({ req, res, url, params, caller, body: () => readJsonBody(req) });
        if (result) sendJson(res, result.status ?? 200, result.json ?? null, result.headers);
        return;
      }
      if (pathMatched) {
        res.writeHead(405);
        return void res.end();
      }
      throw new BerthError('notFound', `no API route ${req.method} ${p} (see docs/fleet-api.yaml)`);
    };
    const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      applySecurityHeaders(res, secure);
      const label = (): string => `${req.method} ${(req.url ?? '/').replace(/=[^&]*/g, '=')}`;
      tracedAsync(label, () => handle(req, res)).catch((err: unknown) => {
        if (!(err instanceof BerthError) || err.category === 'internal') onError(err);
        sendError(res, err);
      });
    };
    const server = secure ? https.createServer({ cert: opts.tls!.cert, key: opts.tls!.key }, listener) : http.createServer(listener);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new BerthError('host', `cannot listen on ${opts.listen}: ${err.message}`, { cause: err })));
      server.listen(port, host, resolve);
    });
    closers.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
    const addr = server.address() as { address: string; port: number };
    const url = `${secure ? 'https' : 'http'}://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`;
    opts.log(`listening on ${url} (instance ${instance}, ${store.dialect})`);
    return { url, close };
  } catch (err) {
    await close();
    throw err;
  }
}
