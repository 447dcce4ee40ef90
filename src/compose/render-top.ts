import crypto from 'node:crypto';
import type { App, AppFile } from './model.js';

/**
 * `berth compose config`'s top-level part: the app's volumes, networks, configs and secrets written
 * back in compose's spelling (render.ts writes the services and puts the document together).
 */

/** The top-level sections, as compose writes them: what `berth compose config` shows of them, and a file reads back the same. */
export function renderTopLevel(app: App): Record<string, unknown> {
  const some = <T>(m: ReadonlyMap<string, T>, f: (v: T) => unknown): Record<string, unknown> | undefined =>
    m.size === 0 ? undefined : Object.fromEntries([...m].map(([k, v]) => [k, f(v)]));
  const maybe = (o: Readonly<Record<string, string>>): Record<string, string> | undefined => (Object.keys(o).length > 0 ? { ...o } : undefined);
  const sections = {
    volumes: some(app.volumes, (v) => ({ name: v.hostName, ...(v.external && { external: true }), driver_opts: maybe(v.driverOpts), labels: maybe(v.labels) })),
    networks: some(app.networks, (n) => ({
      name: n.hostName, ...(n.external && { external: true }), ...(n.internal && { internal: true }), driver_opts: maybe(n.driverOpts),
      ...((n.ipam || n.ipam6) && { ipam: { config: [...(n.ipam ? [{ subnet: n.ipam.subnet, gateway: n.ipam.gateway, ip_range: n.ipam.ipRange }] : []), ...(n.ipam6 ? [{ subnet: n.ipam6.subnet, gateway: n.ipam6.gateway }] : [])] } }),
      ...(n.enableIpv6 && { enable_ipv6: true }), labels: maybe(n.labels),
    })),
    configs: some(app.configs, (f) => fileEntry(f, false)),
    secrets: some(app.secrets, (f) => fileEntry(f, true)),
  };
  return withoutUndefined(sections) as Record<string, unknown>;
}

/**
 * A config's text as `content:`, which reads back to the same bytes. A secret, or bytes that are not
 * text, are not printed: only their size and hash, under an extension key, so the output cannot leak
 * a secret and a file made from it is refused (no file:/content:) rather than silently changed.
 */
function fileEntry(f: AppFile, secret: boolean): Record<string, unknown> {
  const bytes = Buffer.from(f.content, 'base64');
  const text = bytes.toString('utf8');
  if (!secret && Buffer.from(text, 'utf8').equals(bytes)) return { content: text };
  return { 'x-content': `not shown (${bytes.length} bytes, sha256 ${crypto.createHash('sha256').update(bytes).digest('hex')})` };
}

const withoutUndefined = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(withoutUndefined)
    : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, withoutUndefined(x)]))
      : v;

/** Every `$` of a string value doubled: the reader interpolates what it reads, and the printed values are final. */
export const escapeDollars = (v: unknown): unknown =>
  typeof v === 'string' ? v.replaceAll('$', '$$$$')
    : Array.isArray(v) ? v.map(escapeDollars)
      : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escapeDollars(x)]))
        : v;

