import path from 'node:path';
import { BerthError } from '../errors.js';
import { readEnvFile } from './env-file.js';
import type { VariableLookup } from './interpolate.js';

/**
 * The compose reader's part of each service: what needs the compose file's folder, the environment or
 * the deploy's mode, done once when the file is read so the desired state carries plain values a
 * device can use (environment rather than env_file, absolute bind sources for `berth deploy`). Every
 * other service key passes through untouched, for the desired-state schema and service.ts to judge.
 */

/** How the reader resolves what is relative to the compose file. */
export interface FileContext {
  /** The compose file's directory. */
  readonly dir: string;
  /**
   * `local` (`berth deploy`, `berth compose config`): relative bind sources become absolute against
   * `dir` and `~` is the home directory. `fleet`: they stay relative (`./x`), and the device puts them
   * under the app's data directory; `~` and a path out of that directory (`../x`) are refused.
   */
  readonly mode: 'local' | 'fleet';
  /** The home directory `~` stands for (local mode). */
  readonly home: string;
  /** The project's variables (environment, then `.env`): for env_file interpolation and bare KEY lines. */
  readonly lookup: VariableLookup;
  readonly onUnset?: (name: string, where: string) => void;
}

/** A YAML mapping (not a list, not null). */
export const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A mapping's entries without compose's `x-*` extension keys, which carry no meaning of their own. */
export function withoutExtensions(m: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('x-')));
}

/**
 * The services whose profiles are enabled: a service without `profiles` always runs, one with them only
 * when one is in `enabled` (`*` enables every profile, as `docker compose --profile '*'` does).
 */
export function activeServices(services: Record<string, unknown>, enabled: ReadonlySet<string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(services).filter(([name, svc]) => {
      const profiles = isMapping(svc) ? svc.profiles : undefined;
      if (profiles === undefined) return true;
      if (!Array.isArray(profiles) || !profiles.every((p) => typeof p === 'string' && /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(p))) {
        throw new BerthError('invalid', `services.${name}.profiles: must be a list of profile names (letters, digits, _ . -)`);
      }
      return enabled.has('*') || profiles.some((p) => enabled.has(p as string));
    }),
  );
}

/** One service as the file has it (interpolated) → as the desired state carries it. */
export function readService(name: string, raw: unknown, ctx: FileContext): Record<string, unknown> {
  const at = `services.${name}`;
  if (!isMapping(raw)) throw new BerthError('invalid', `${at}: must be a mapping of service keys`);
  const { profiles: _profiles, build, env_file: envFile, ...svc } = withoutExtensions(raw);
  if (build !== undefined && svc.image === undefined) {
    throw new BerthError('invalid', `${at}.build: berth runs images and does not build them; give service ${name} an image:`, {
      hint: `build it for your boards' platforms in CI (e.g. docker buildx build --platform linux/arm64,linux/arm/v7 --push), push it to a registry the boards reach, and set services.${name}.image to it`,
    });
  }
  // With an image beside it, build: is how the image was made elsewhere; the image is what runs.
  if (envFile !== undefined) svc.environment = { ...envFileVariables(at, envFile, ctx), ...environmentMapping(svc.environment) };
  if (Array.isArray(svc.volumes)) svc.volumes = svc.volumes.map((v, i) => bindSource(`${at}.volumes[${i}]`, v, ctx));
  return svc;
}

/** `env_file:` in each of its forms (a path, a list of paths or of `{path, required}`), later files winning. */
function envFileVariables(at: string, envFile: unknown, ctx: FileContext): Record<string, string> {
  const entries = Array.isArray(envFile) ? envFile : [envFile];
  const vars: Record<string, string> = {};
  entries.forEach((entry, i) => {
    const where = Array.isArray(envFile) ? `${at}.env_file[${i}]` : `${at}.env_file`;
    const long = isMapping(entry);
    const file = long ? entry.path : entry;
    const required = long ? entry.required ?? true : true;
    if (typeof file !== 'string' || file === '' || typeof required !== 'boolean' || (long && Object.keys(entry).some((k) => k !== 'path' && k !== 'required' && k !== 'format'))) {
      throw new BerthError('invalid', `${where}: expected a file path or {path, required}`);
    }
    if (long && entry.format !== undefined && entry.format !== 'raw' && entry.format !== 'dotenv') throw new BerthError('invalid', `${where}.format: berth reads dotenv files only`);
    const full = path.resolve(ctx.dir, expandHome(file, ctx, where));
    try {
      for (const [k, v] of readEnvFile(full, { lookup: ctx.lookup, ...(ctx.onUnset && { onUnset: ctx.onUnset }) })) vars[k] = v;
    } catch (err) {
      if (!required && err instanceof BerthError && err.category === 'notFound') return;
      if (err instanceof BerthError) throw new BerthError(err.category, `${where}: ${err.message}`, { cause: err });
      throw err;
    }
  });
  return vars;
}

/** `environment:` as a mapping, so env_file's variables can go under it (a bare `KEY` entry is `KEY: null`, as compose reads it). */
function environmentMapping(env: unknown): Record<string, unknown> {
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e) => {
      const s = String(e);
      const eq = s.indexOf('=');
      return eq < 0 ? [s, null] : [s.slice(0, eq), s.slice(eq + 1)];
    }));
  }
  return isMapping(env) ? env : {};
}

function expandHome(p: string, ctx: FileContext, where: string): string {
  if (p !== '~' && !p.startsWith('~/')) return p;
  if (ctx.mode === 'fleet') {
    throw new BerthError('invalid', `${where}: "${p}" names a home directory, which differs from board to board; give a path relative to the app's data directory (./…) or an absolute one`);
  }
  return path.join(ctx.home, p.slice(1));
}

/** A relative host path of a service volume (short `./a:/b`, long `{type: bind, source: ./a}`), resolved for the mode. */
function bindSource(where: string, entry: unknown, ctx: FileContext): unknown {
  if (typeof entry === 'string') {
    const colon = entry.indexOf(':');
    if (colon <= 0) return entry;
    const source = entry.slice(0, colon);
    return isRelative(source) ? `${resolveHostPath(where, source, ctx)}${entry.slice(colon)}` : entry;
  }
  if (isMapping(entry) && entry.type === 'bind' && typeof entry.source === 'string' && isRelative(entry.source)) {
    return { ...entry, source: resolveHostPath(`${where}.source`, entry.source, ctx) };
  }
  return entry;
}

/** compose's rule: a source starting with `.` or `~` is a path relative to the project (or home). */
const isRelative = (source: string): boolean => source === '.' || source.startsWith('./') || source.startsWith('../') || source === '..' || source === '~' || source.startsWith('~/');

/**
 * A relative host path resolved for the mode: absolute against the file's folder (local), or kept
 * relative, cleaned (`./a/../b` → `./b`), and refused when it leaves the app's data directory (fleet).
 */
export function resolveHostPath(where: string, source: string, ctx: FileContext): string {
  const expanded = expandHome(source, ctx, where);
  if (ctx.mode === 'local') return path.resolve(ctx.dir, expanded);
  const clean = path.posix.normalize(expanded);
  if (clean === '..' || clean.startsWith('../')) {
    throw new BerthError('invalid', `${where}: "${source}" leaves the app's data directory; a fleet deploy's relative paths stay inside it (give an absolute path for anything else on the board)`);
  }
  return clean === '.' ? '.' : `./${clean}`;
}
