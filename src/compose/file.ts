import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { isComposeKey } from '../protocol/compose-keys.js';
import { checkDesiredShape } from '../protocol/validate.js';
import { projectEnvironment } from './env-file.js';
import { readResources } from './file-resources.js';
import { activeServices, readService, type FileContext } from './file-services.js';
import { interpolateDocument } from './interpolate.js';
import { loadComposeYaml } from './load-yaml.js';
import type { App } from './model.js';
import { normalizeDesired } from './normalize.js';
import { checkDeclaredVolumes } from './refs.js';
import { readText } from '../config/read.js';
import { balenaWarnings } from './service-balena.js';

/**
 * Compose files as `berth deploy`, `berth fleet deploy` and `berth compose config` read them, with the
 * compose specification's semantics: YAML anchors and merge keys (load-yaml.ts), `${VAR}` interpolation
 * from the environment and the `.env` beside the file (interpolate.ts, env-file.ts), `x-*` extensions
 * dropped, `profiles`, `env_file`, relative paths and `build:` settled (file-services.ts), configs and
 * secrets read into bytes (file-resources.ts), plus berth's own `x-berth: {update}`. A file becomes the
 * same desired state the fleet sends (at revision 1; see atRevision) and is normalized by the same code
 * the device runs.
 */

export interface ComposeReadOptions {
  /** See FileContext.mode: `local` (the default) for `berth deploy` and `compose config`, `fleet` for `berth fleet deploy`. */
  readonly mode?: 'local' | 'fleet';
  /** Profiles to enable (`--profile`), besides those COMPOSE_PROFILES names. */
  readonly profiles?: readonly string[];
  /** The environment variables interpolation sees before the `.env` file's (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Told of what compose warns about and goes on (a variable that is not set). */
  readonly onWarning?: (message: string) => void;
  /** berth's state root where the app will run (NormalizeOptions.stateRoot). */
  readonly stateRoot?: string;
}

/** Top-level keys a file may have besides `x-*`; `version` (obsolete) is accepted as compose accepts it. */
const TOP_LEVEL = new Set(['services', 'x-berth', 'version', 'name', 'volumes', 'networks', 'configs', 'secrets']);

/** How messages name the file, as the config reader names its files. */
const WHAT = 'compose file';

/**
 * The file's text parsed (anchors and merge keys resolved), nothing checked or interpolated: missing or
 * unreadable notFound, bad YAML invalid with line and column, as every config file's.
 */
export async function readComposeDocument(file: string): Promise<unknown> {
  return loadComposeYaml(readText(file, WHAT), `${WHAT} ${file}`);
}

/** Reads, checks and normalizes a compose file; errors start with the file and name the offending key. */
export async function readComposeFile(file: string, opts: ComposeReadOptions = {}): Promise<App> {
  return composeApp(await readComposeDocument(file), file, opts);
}

/** A parsed compose document → the app model (revision 1); `file` names it in errors and is what relative paths are relative to. */
export function composeApp(doc: unknown, file: string, opts: ComposeReadOptions = {}): App {
  const label = `${WHAT} ${file}`;
  try {
    const desired = checkDesiredShape(composeDesired(doc, file, opts), label);
    const app = normalizeDesired(desired, { ...(opts.stateRoot !== undefined && { stateRoot: opts.stateRoot }) });
    checkDeclaredVolumes(desired, app);
    for (const w of balenaWarnings(app)) opts.onWarning?.(w);
    return app;
  } catch (err) {
    if (err instanceof BerthError && !err.message.startsWith(label)) {
      throw new BerthError(err.category, `${label}: ${err.message}`, { cause: err, ...(err.hint !== undefined && { hint: err.hint }) });
    }
    throw err;
  }
}

/** The document as a desired state (not yet schema-checked): everything that needs the file's folder or the environment done. */
function composeDesired(doc: unknown, file: string, opts: ComposeReadOptions): Record<string, unknown> {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new BerthError('invalid', 'expected a compose mapping with services:');
  const dir = path.dirname(path.resolve(file));
  const env = opts.env ?? process.env;
  const onUnset = (name: string, where: string): void => opts.onWarning?.(`variable ${name} is not set; using an empty string (${where})`);
  const { lookup } = projectEnvironment(dir, env, onUnset);
  const d = interpolateDocument(doc, { lookup, onUnset }) as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (!TOP_LEVEL.has(key) && !key.startsWith('x-')) throw new BerthError('invalid', `${key}: ${isComposeKey('', key) ? 'berth does not support this top-level compose key' : 'unknown top-level key'}`);
  }
  const ctx: FileContext = { dir, mode: opts.mode ?? 'local', home: env.HOME ?? os.homedir(), lookup, onUnset };
  const services = d.services ?? {};
  if (services === null || typeof services !== 'object' || Array.isArray(services)) throw new BerthError('invalid', 'services: must be a mapping of service names to services');
  const enabled = new Set([...(opts.profiles ?? []), ...(lookup('COMPOSE_PROFILES') ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '')]);
  const active = activeServices(services as Record<string, unknown>, enabled);
  const update = (d['x-berth'] as { update?: unknown } | undefined)?.update;
  const name = lookup('COMPOSE_PROJECT_NAME') || (typeof d.name === 'string' ? d.name : projectName(dir));
  return {
    revision: 1,
    ...(name !== undefined && name !== '' && { name }),
    services: Object.fromEntries(Object.entries(active).map(([n, s]) => [n, readService(n, s, ctx)])),
    ...(update !== undefined && { update }),
    ...readResources(d, ctx),
  };
}

/** Compose's default project name: the file's folder, lower-cased, without the characters compose drops; none for `/`. */
function projectName(dir: string): string | undefined {
  return path.basename(dir).toLowerCase().replace(/[^a-z0-9_-]/g, '').replace(/^[_-]+/, '').slice(0, 63) || undefined;
}
