/**
 * Registry credentials: berth's own store `<root>/auth.json` first, then Docker's config.json, so a
 * board set up with `docker login` pulls without a second login. Only berth's store is ever written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../host/fsync.js';
import { parseJson } from '../../config/parse.js';
import { BerthError, isErrno } from '../../errors.js';
import { DOCKER_HUB } from '../reference.js';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** The file berth keeps its logins in, under the state root. */
export const AUTH_FILE = 'auth.json';

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  [other: string]: unknown;
}

interface AuthFile {
  auths?: Record<string, AuthEntry>;
  [other: string]: unknown;
}

// Docker Hub goes by several names in config files; references call it docker.io.
const HUB_ALIASES = new Set(['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com', 'docker.io']);

/**
 * The registry a config key or a user's argument names: scheme and path dropped, lower-cased, Docker Hub
 * aliases folded into `docker.io`. `https://index.docker.io/v1/` → `docker.io`, `https://h:5000` → `h:5000`.
 */
export function normalizeRegistry(key: string): string {
  const host = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  return HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/** An auth.json entry (Docker's format, base64 of user:password); a ':' in the user name could not be read back. */
export function authEntry(creds: Credentials): { auth: string } {
  if (creds.username.includes(':')) throw new BerthError('invalid', `user name "${creds.username}" contains ':'`);
  return { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
}

export class CredentialStore {
  /** berth's store: `<root>/auth.json`. */
  readonly path: string;
  /** Docker's config: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  readonly dockerPath: string;

  constructor(root: string, env: NodeJS.ProcessEnv = process.env, homeDir: string = os.homedir()) {
    this.path = path.join(root, AUTH_FILE);
    const dockerDir = env.DOCKER_CONFIG !== undefined && env.DOCKER_CONFIG !== '' ? env.DOCKER_CONFIG : path.join(homeDir, '.docker');
    this.dockerPath = path.join(dockerDir, 'config.json');
  }

  /**
   * Credentials for `registry` (any spelling normalizeRegistry accepts): berth's store wins over Docker's.
   * Docker credential helpers (`credsStore`) are not consulted. Malformed files are `invalid`.
   */
  get(registry: string): Credentials | undefined {
    const want = normalizeRegistry(registry);
    for (const file of [this.path, this.dockerPath]) {
      const auths = readAuths(file);
      if (!auths) continue;
      // An exact key first, then any spelling of the same registry (Docker Hub's v1 URL, a scheme).
      const key = Object.hasOwn(auths, want) ? want : Object.keys(auths).find((k) => normalizeRegistry(k) === want);
      const entry = key === undefined ? undefined : auths[key];
      const creds = entry === undefined ? undefined : decodeEntry(entry, file, key!);
      if (creds) return creds;
    }
    return undefined;
  }

  /** Stores credentials in berth's store (atomically, mode 0600), replacing earlier ones for the registry. */
  set(registry: string, creds: Credentials): void {
    const entry = authEntry(creds);
    const file = readFile(this.path) ?? {};
    const auths = { ...(file.auths ?? {}) };
    for (const k of Object.keys(auths)) if (normalizeRegistry(k) === normalizeRegistry(registry)) delete auths[k];
    auths[normalizeRegistry(registry)] = entry;
    writeAtomic(this.path, `${JSON.stringify({ ...file, auths }, null, 2)}\n`);
  }

  /** Removes the registry from berth's store; false when it held none. Docker's config is never touched. */
  remove(registry: string): boolean {
    const file = readFile(this.path);
    if (!file?.auths) return false;
    const want = normalizeRegistry(registry);
    const keys = Object.keys(file.auths).filter((k) => normalizeRegistry(k) === want);
    if (keys.length === 0) return false;
    const auths = { ...file.auths };
    for (const k of keys) delete auths[k];
    writeAtomic(this.path, `${JSON.stringify({ ...file, auths }, null, 2)}\n`);
    return true;
  }
}

function readFile(file: string): AuthFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw new BerthError('host', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    // parseJson says where, and unlike JSON.parse's message never quotes the text: it holds passwords.
    json = parseJson(text, file);
  } catch (err) {
    throw new BerthError('invalid', (err as Error).message, { cause: err, hint: `fix or remove ${file}` });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new BerthError('invalid', `${file}: expected a JSON object`);
  const auths = (json as AuthFile).auths;
  if (auths !== undefined && (typeof auths !== 'object' || auths === null || Array.isArray(auths))) {
    throw new BerthError('invalid', `${file}: "auths" must be an object`);
  }
  return json as AuthFile;
}

function readAuths(file: string): Record<string, AuthEntry> | undefined {
  return readFile(file)?.auths;
}

/** `auth` (base64 "user:password") or separate username/password; an entry with neither is skipped. */
function decodeEntry(entry: AuthEntry, file: string, key: string): Credentials | undefined {
  if (typeof entry !== 'object' || entry === null) throw new BerthError('invalid', `${file}: the entry for "${key}" is not an object`);
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new BerthError('invalid', `${file}: the "auth" of "${key}" is not base64 of user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === 'string' && entry.username !== '' && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

/** Atomically, 0600 in a 0700 dir: these are secrets. */
function writeAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    writeFileAtomic(file, text, 0o600);
  } catch (err) {
    throw new BerthError(isErrno(err, 'ENOSPC') ? 'resource' : 'host', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}
