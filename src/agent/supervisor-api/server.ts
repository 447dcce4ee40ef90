import http from 'node:http';
import { handleRequest, type ApiRequest, type RouteContext } from './routes.js';

/** A request body larger than this is refused (the API's bodies are a few fields). */
const MAX_BODY = 64 * 1024;

export interface SupervisorApiServerOptions {
  readonly ctx: RouteContext;
  readonly port: number;
  /** One line per action and per listener change; never a key (the query is never logged). */
  readonly log: (event: string, detail: Record<string, unknown>) => void;
}

/** The body as balena's express app reads it: JSON, else a urlencoded form (busybox wget --post-data). */
function parseBody(raw: string, type: string | undefined): Record<string, unknown> {
  if (raw.trim() === '') return {};
  if (type?.includes('json') || raw.trimStart().startsWith('{')) {
    const v = JSON.parse(raw) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

/**
 * The supervisor API's HTTP side: one listener per address the containers that carry the label are told
 * (loopback, or their bridge's gateway), never a wildcard, so the API stays on the host. `listenOn` makes
 * the set of listeners match what is wanted now; an address that cannot be bound yet (a bridge whose
 * address appears with its first container) is logged and tried again at the next call.
 */
export class SupervisorApiServer {
  private readonly servers = new Map<string, http.Server>();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly o: SupervisorApiServerOptions) {}

  /** The addresses listened on now. */
  addresses(): string[] {
    return [...this.servers.keys()].sort();
  }

  /** Listens on exactly `hosts` (calls run one after the other). */
  listenOn(hosts: ReadonlySet<string>): Promise<void> {
    this.queue = this.queue.then(() => this.sync(hosts));
    return this.queue;
  }

  close(): Promise<void> {
    return this.listenOn(new Set());
  }

  private async sync(hosts: ReadonlySet<string>): Promise<void> {
    for (const [host, server] of [...this.servers]) {
      if (hosts.has(host)) continue;
      this.servers.delete(host);
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      this.o.log('supervisor-api-closed', { host, port: this.o.port });
    }
    for (const host of hosts) {
      if (this.servers.has(host)) continue;
      const server = http.createServer((req, res) => void this.serve(req, res));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(this.o.port, host, () => resolve());
        });
        this.servers.set(host, server);
        this.o.log('supervisor-api-listening', { host, port: this.o.port });
      } catch (err) {
        this.o.log('supervisor-api-listen-failed', { host, port: this.o.port, error: (err as Error).message });
      }
    }
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://supervisor');
    let raw = '';
    let size = 0;
    try {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_BODY) throw new Error('body too large');
        raw += chunk.toString('utf8');
      }
    } catch {
      res.writeHead(413).end();
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = parseBody(raw, req.headers['content-type']);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'failed', message: 'the body is not valid JSON' }));
      return;
    }
    const request: ApiRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body, ...(req.headers.authorization !== undefined && { authorization: req.headers.authorization }) };
    const answer = await handleRequest(request, this.o.ctx);
    if (request.method !== 'GET') this.o.log('supervisor-api-request', { method: request.method, path: request.path, status: answer.status });
    const text = typeof answer.body === 'string';
    res.writeHead(answer.status, { 'content-type': text ? 'text/plain; charset=utf-8' : 'application/json' });
    res.end(text ? (answer.body as string) : JSON.stringify(answer.body), () => answer.after?.());
  }
}
