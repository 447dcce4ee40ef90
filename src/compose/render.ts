import { formatDuration } from '../duration.js';
import { stringifyYaml } from '../yaml.js';
import crypto from 'node:crypto';
import { readComposeFile, type ComposeReadOptions } from './file.js';
import type { App, AppFile } from './model.js';
import { renderService } from './render-service.js';

/**
 * The app model written back as a compose document, as `docker compose config` prints one: every
 * service with its values normalized (argv lists, environment and labels as mappings, sizes in bytes,
 * durations in compose's spelling, paths cleaned, device permissions spelled out) and berth's defaults
 * filled in (restart, read_only, healthcheck timings, the update policy); each service is written by
 * render-service.ts. The output is itself a file berth accepts (and normalizes to the same document).
 * What is shown is what runs: a CMD-SHELL healthcheck as the CMD it execs (`/bin/sh -c …`),
 * stop_grace_period in the whole seconds berth waits. berth's own labels are left out: they are not
 * the user's to write.
 */

/** The top-level sections, as compose writes them: what `berth compose config` shows of them, and a file reads back the same. */
function topLevel(app: App): Record<string, unknown> {
  const some = <T>(m: ReadonlyMap<string, T>, f: (v: T) => unknown): Record<string, unknown> | undefined =>
    m.size === 0 ? undefined : Object.fromEntries([...m].map(([k, v]) => [k, f(v)]));
  const maybe = (o: Readonly<Record<string, string>>): Record<string, string> | undefined => (Object.keys(o).length > 0 ? { ...o } : undefined);
  const sections = {
    volumes: some(app.volumes, (v) => ({ name: v.hostName, ...(v.external && { external: true }), driver_opts: maybe(v.driverOpts), labels: maybe(v.labels) })),
    networks: some(app.networks, (n) => ({
      name: n.hostName, ...(n.external && { external: true }), ...(n.internal && { internal: true }), driver_opts: maybe(n.driverOpts),
      ...(n.ipam && { ipam: { config: [{ subnet: n.ipam.subnet, gateway: n.ipam.gateway, ip_range: n.ipam.ipRange }] } }),
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
const escapeDollars = (v: unknown): unknown =>
  typeof v === 'string' ? v.replaceAll('$', '$$$$')
    : Array.isArray(v) ? v.map(escapeDollars)
      : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escapeDollars(x)]))
        : v;

/** The normalized compose document for `app` (a plain object, ready for YAML or JSON). */
export function composeDocument(app: App): Record<string, unknown> {
  const { strategy, healthWindowMs, onFailure } = app.update;
  return escapeDollars({
    name: app.name,
    services: Object.fromEntries([...app.services].map(([name, s]) => [name, renderService(s, app)])),
    ...topLevel(app),
    'x-berth': { update: { strategy, health_window: formatDuration(healthWindowMs), on_failure: onFailure } },
  }) as Record<string, unknown>;
}

/**
 * `berth compose config FILE`: reads (with `opts`, as `berth deploy` would), checks and normalizes the
 * file; resolves with the normalized document as YAML, or with '' when `quiet` (only validating).
 * Throws the file's first problem.
 */
export async function composeConfig(file: string, opts: ComposeReadOptions = {}, quiet = false): Promise<string> {
  const app = await readComposeFile(file, opts);
  return quiet ? '' : stringifyYaml(composeDocument(app));
}
