import path from 'node:path';
import { readConfigDocument } from '../config/read.js';
import { BerthError } from '../errors.js';
import { checkDesiredShape } from '../protocol/validate.js';
import type { App } from './model.js';
import { normalizeDesired } from './normalize.js';

/**
 * Compose files as `berth deploy`, `berth fleet deploy` and `berth compose config` read them: the
 * services subset berth runs, plus `x-berth: {update}`. A file becomes the same desired state the fleet
 * sends (at revision 1; see atRevision) and is normalized by the same code the device runs.
 */

/** Top-level keys a file may have; `version` (obsolete) and `name` are accepted as compose accepts them. */
const TOP_LEVEL = new Set(['services', 'x-berth', 'version', 'name']);

/** How messages name the file, as the config reader names its files. */
const WHAT = 'compose file';

/**
 * The file's text parsed, nothing checked: the common config reader's read-and-parse half (missing or
 * unreadable notFound, bad YAML/JSON invalid with line and column); the schema applies to the desired
 * state built from it.
 */
export async function readComposeDocument(file: string): Promise<unknown> {
  return readConfigDocument(file, WHAT);
}

/** Reads, checks and normalizes a compose file; errors start with the file and name the offending key. */
export async function readComposeFile(file: string): Promise<App> {
  return composeApp(await readComposeDocument(file), file);
}

/** A parsed compose document → the app model (revision 1); `file` names it in errors and gives the default project name. */
export function composeApp(doc: unknown, file: string): App {
  const label = `${WHAT} ${file}`;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new BerthError('invalid', `${label}: expected a compose mapping with services:`);
  const d = doc as Record<string, unknown>;
  const unknown = Object.keys(d).filter((k) => !TOP_LEVEL.has(k));
  if (unknown.length > 0) throw new BerthError('invalid', `${label}: berth deploys services only; unsupported top-level keys: ${unknown.join(', ')}`);
  const services = (d.services ?? {}) as Record<string, unknown>;
  for (const [name, svc] of typeof services === 'object' && services !== null ? Object.entries(services) : []) {
    // Said plainly rather than as two schema errors (build not supported, image required).
    if (svc !== null && typeof svc === 'object' && 'build' in svc && !('image' in svc)) {
      throw new BerthError('invalid', `${label}: services.${name}.build: berth runs images and does not build them; give service ${name} an image:`);
    }
  }
  const update = (d['x-berth'] as { update?: unknown } | undefined)?.update;
  const desired = checkDesiredShape({ revision: 1, services, ...(update !== undefined && { update }) }, label);
  try {
    return normalizeDesired(desired, typeof d.name === 'string' ? d.name : projectName(file));
  } catch (err) {
    if (err instanceof BerthError) throw new BerthError(err.category, `${label}: ${err.message}`, { cause: err, ...(err.hint !== undefined && { hint: err.hint }) });
    throw err;
  }
}

/** Compose's default project name: the file's directory, lower-cased, without characters compose drops; none for `/`. */
function projectName(file: string): string | undefined {
  return path.basename(path.dirname(path.resolve(file))).toLowerCase().replace(/[^a-z0-9_-]/g, '') || undefined;
}
