import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { isComposeKey } from '../protocol/compose-keys.js';
import { isMapping, resolveHostPath, withoutExtensions, type FileContext } from './file-services.js';
import { MAX_APP_FILE_BYTES } from './top-level.js';

/**
 * The compose reader's part of the top-level `volumes`, `networks`, `configs` and `secrets`: extension
 * keys dropped, a local bind volume's relative `device` resolved like a bind source, and every config
 * and secret read into bytes (base64), since the device that runs the app has no compose file and no
 * folder beside it. What the values mean is top-level.ts's (normalization) business.
 */

type Section = 'volumes' | 'networks' | 'configs' | 'secrets';

/** The four sections of the document `d` as the desired state carries them (absent ones left out). */
export function readResources(d: Record<string, unknown>, ctx: FileContext): Partial<Record<Section, Record<string, unknown>>> {
  const out: Partial<Record<Section, Record<string, unknown>>> = {};
  for (const section of ['volumes', 'networks', 'configs', 'secrets'] as const) {
    const raw = d[section];
    if (raw === undefined || raw === null) continue;
    if (!isMapping(raw)) throw new BerthError('invalid', `${section}: must be a mapping of names to definitions`);
    out[section] = Object.fromEntries(Object.entries(raw).map(([key, spec]) => [key, entry(section, key, spec, ctx)]));
  }
  return out;
}

function entry(section: Section, key: string, spec: unknown, ctx: FileContext): unknown {
  const at = `${section}.${key}`;
  if (spec === null && (section === 'volumes' || section === 'networks')) return null;
  if (!isMapping(spec)) throw new BerthError('invalid', `${at}: must be a mapping${section === 'volumes' || section === 'networks' ? ' (or empty)' : ''}`);
  const s = withoutExtensions(spec);
  if (section === 'configs' || section === 'secrets') return { content: fileContent(at, s, ctx) };
  const opts = s.driver_opts;
  if (section === 'volumes' && isMapping(opts) && typeof opts.device === 'string' && /^[.~]/.test(opts.device)) {
    // compose resolves a local bind volume's device as it does a bind source.
    return { ...s, driver_opts: { ...opts, device: resolveHostPath(`${at}.driver_opts.device`, opts.device, ctx) } };
  }
  return s;
}

/** A config's or secret's bytes, base64, from exactly one of `file:`, `content:` or `environment:`. */
function fileContent(at: string, s: Record<string, unknown>, ctx: FileContext): string {
  if (s.external !== undefined && s.external !== false) {
    throw new BerthError('invalid', `${at}.external: a board has no store of configs or secrets to take it from; give file:, content: or environment:`);
  }
  for (const k of Object.keys(s)) {
    if (k !== 'file' && k !== 'content' && k !== 'environment' && k !== 'external') {
      throw new BerthError('invalid', `${at}.${k}: ${isComposeKey(at, k) ? 'berth does not support this compose key' : 'unknown key'}`);
    }
  }
  const given = (['file', 'content', 'environment'] as const).filter((k) => s[k] !== undefined);
  if (given.length !== 1) throw new BerthError('invalid', `${at}: give exactly one of file:, content: or environment:${given.length > 1 ? ` (found ${given.join(', ')})` : ''}`);
  const [kind] = given;
  const value = s[kind!];
  if (typeof value !== 'string' || value === '') throw new BerthError('invalid', `${at}.${kind}: must be a non-empty string`);
  if (kind === 'content') return bounded(`${at}.content`, Buffer.from(value, 'utf8'));
  if (kind === 'environment') {
    const v = ctx.lookup(value);
    if (v === undefined) throw new BerthError('invalid', `${at}.environment: variable ${value} is not set (in the environment or the .env file)`);
    return bounded(`${at}.environment`, Buffer.from(v, 'utf8'));
  }
  // Read here, on the machine that has the file, in either mode: the desired state carries the bytes.
  const file = path.resolve(ctx.dir, value.startsWith('~/') ? path.join(ctx.home, value.slice(2)) : value);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new BerthError('notFound', `${at}.file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  if (!stat.isFile()) throw new BerthError('invalid', `${at}.file: ${file} is not a regular file`);
  if (stat.size > MAX_APP_FILE_BYTES) throw new BerthError('invalid', `${at}.file: ${file} is ${stat.size} bytes, over the ${MAX_APP_FILE_BYTES}-byte limit of a config or secret`);
  return bounded(`${at}.file`, fs.readFileSync(file));
}

function bounded(at: string, bytes: Buffer): string {
  if (bytes.length > MAX_APP_FILE_BYTES) throw new BerthError('invalid', `${at}: ${bytes.length} bytes, over the ${MAX_APP_FILE_BYTES}-byte limit of a config or secret`);
  return bytes.toString('base64');
}
