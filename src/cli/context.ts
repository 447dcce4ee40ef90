import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ROOT, hostPathsFromEnv, type HostPaths } from '../host/paths.js';

export { DEFAULT_ROOT };

/** What every command gets from the global options and the environment; built once per invocation. */
export interface CliContext {
  readonly root: string;
  readonly host: HostPaths;
  readonly env: NodeJS.ProcessEnv;
  readonly out: NodeJS.WritableStream;
  /** Board profiles to choose from instead of the built-in ones (env BERTH_PROFILES_DIR). */
  readonly profilesDir?: string;
}

export function makeContext(globalOpts: { root?: string }, env: NodeJS.ProcessEnv = process.env): CliContext {
  const root = globalOpts.root ?? (env.BERTH_ROOT !== undefined && env.BERTH_ROOT !== '' ? env.BERTH_ROOT : DEFAULT_ROOT);
  const profilesDir = env.BERTH_PROFILES_DIR !== undefined && env.BERTH_PROFILES_DIR !== '' ? env.BERTH_PROFILES_DIR : undefined;
  return { root, host: hostPathsFromEnv(env), env, out: process.stdout, ...(profilesDir !== undefined && { profilesDir }) };
}

export function packageVersion(): string {
  const file = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
}
