import fs from 'node:fs';
import path from 'node:path';
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

/** The directory berth runs from (package.json, bin/, dist/): an agent bundle's root on a board. */
export function packageRoot(): string {
  return path.dirname(fileURLToPath(new URL('../../package.json', import.meta.url)));
}

export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
