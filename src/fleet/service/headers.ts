import type { ServerResponse } from 'node:http';

/**
 * Security headers on every response of `berth fleet serve` (API, stream, metrics, dashboard files and
 * errors alike): set once per request before any handler runs, so no route can forget them.
 *
 * The Content-Security-Policy is strict because the dashboard needs nothing more: one bundled script
 * and one stylesheet from the service itself (no inline script, no eval, no CDN), fetch/SSE to the
 * same origin, and only `data:` images (the empty favicon). uPlot and Preact style elements through
 * the CSSOM, which style-src does not govern, so no 'unsafe-inline' is needed. `frame-ancestors 'none'`
 * (and X-Frame-Options for older browsers) stops click-jacking of the deploy and cancel buttons.
 * HSTS is sent only under TLS: over plain HTTP a browser ignores it, and pinning a loopback name to
 * HTTPS would break a later plain-HTTP service on the same host.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** One year, the value HSTS preload lists ask for; no includeSubDomains: the service cannot speak for its siblings. */
const HSTS = 'max-age=31536000';

export function securityHeaders(tls: boolean): Readonly<Record<string, string>> {
  return {
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    ...(tls && { 'strict-transport-security': HSTS }),
  };
}

/** Sets them on `res` (writeHead's own headers merge with these). */
export function applySecurityHeaders(res: ServerResponse, tls: boolean): void {
  for (const [name, value] of Object.entries(securityHeaders(tls))) res.setHeader(name, value);
}
