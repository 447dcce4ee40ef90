import fs from 'node:fs';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The dashboard's files (dist/web/ of the package, or --web DIR) for every path outside /api/ and /metrics.
 * A path that names no file and is not a known asset type gets index.html, so the dashboard can route
 * on the client. Paths are resolved inside the directory only: `..` and symlinks out of it are refused.
 * The security headers (CSP and the rest) are set by the server for every response (headers.ts).
 */
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.ico': 'image/x-icon', '.woff2': 'font/woff2', '.map': 'application/json', '.txt': 'text/plain; charset=utf-8', '.webmanifest': 'application/manifest+json',
};

export function serveStatic(dir: string, req: IncomingMessage, res: ServerResponse, pathname: string): void {
  const notFound = (): void => {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' });
    res.end();
    return;
  }
  let root: string;
  try {
    root = fs.realpathSync(dir);
  } catch {
    return notFound();
  }
  const inside = (p: string): string | undefined => {
    try {
      const real = fs.realpathSync(p);
      return (real === root || real.startsWith(root + path.sep)) && fs.statSync(real).isFile() ? real : undefined;
    } catch {
      return undefined;
    }
  };
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return notFound();
  }
  if (rel.includes('\0')) return notFound();
  const wanted = path.join(root, path.normalize(`/${rel}`));
  let file = inside(pathname.endsWith('/') ? path.join(wanted, 'index.html') : wanted);
  // A missing asset (a known file type) is a 404; anything else is a dashboard route (device ids may hold dots).
  if (file === undefined && TYPES[path.extname(wanted)] === undefined) file = inside(path.join(root, 'index.html'));
  if (file === undefined) return notFound();
  const headers = {
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'content-length': fs.statSync(file).size,
    'cache-control': 'no-cache',
  };
  res.writeHead(200, headers);
  if (req.method === 'HEAD') return void res.end();
  fs.createReadStream(file).pipe(res);
}
