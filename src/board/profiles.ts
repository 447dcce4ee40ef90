import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configError, readJsonConfigSync } from '../config/read.js';
import { BerthError } from '../errors.js';
import validateProfile from '../generated/board-profile.validate.js';
import { isNormalizedPlatform } from '../image/platform.js';
import type { StorageClass } from './storage.js';

/** A board profile as stored in board-profiles/<id>.json; board-profiles/schema.json is the contract. */
export interface BoardProfile {
  readonly id: string;
  readonly name: string;
  readonly soc?: string;
  readonly match: {
    readonly revisionTypes?: readonly string[];
    readonly compatible?: readonly string[];
    readonly model?: string;
    readonly fallback?: { readonly userland: string; readonly cpuIsa?: readonly CpuIsa[] };
  };
  readonly platforms: Readonly<Record<string, readonly string[]>>;
  readonly reserve: { readonly osBytes: number; readonly agentBytes: number };
  readonly containerDefaults: {
    readonly memoryHighPercent: number;
    readonly memoryMaxPercent: number;
    readonly pidsLimit: number;
    readonly cpuWeight: number;
    readonly maxParallelDownloads: number;
  };
  readonly storage: { readonly class: StorageClass };
  readonly kernelCmdline?: { readonly files: readonly string[]; readonly edit: string };
}

export type CpuIsa = 'armv6' | 'armv7' | 'armv8' | 'x86';

/** The profiles shipped with berth: `<package>/board-profiles`, next to `dist/`. */
export const BUILTIN_PROFILES_DIR = fileURLToPath(new URL('../../board-profiles/', import.meta.url));

/** A board profile as a config file: schema board-profiles/schema.json, precompiled. */
const BOARD_PROFILE = { what: 'board profile', validate: validateProfile } as const;

/** Loads and validates every `*.json` profile in `dir` (except the schema). Any invalid file is an error. */
export function loadProfiles(dir: string = BUILTIN_PROFILES_DIR): BoardProfile[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json') && n !== 'schema.json').sort();
  } catch (err) {
    throw new BerthError('host', `cannot read board profiles in ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const profiles = names.map((name) => {
    const file = path.join(dir, name);
    const profile = readJsonConfigSync<BoardProfile>(file, BOARD_PROFILE);
    checkProfile(profile, name, file);
    return profile;
  });
  if (profiles.length === 0) throw new BerthError('host', `no board profiles found in ${dir}`);
  return profiles;
}

/** Rules JSON Schema cannot express. */
function checkProfile(p: BoardProfile, name: string, file: string): void {
  const fail = (msg: string): never => {
    throw configError(BOARD_PROFILE, file, msg);
  };
  if (`${p.id}.json` !== name) fail(`id "${p.id}" does not match the file name`);
  if (p.match.model !== undefined) {
    try {
      new RegExp(p.match.model);
    } catch (err) {
      fail(`match.model is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  const hasSpecific = p.match.revisionTypes || p.match.compatible || p.match.model;
  if (hasSpecific && p.match.fallback) fail('match.fallback cannot be combined with board-specific matches');
  for (const [userland, list] of Object.entries(p.platforms)) {
    for (const spec of list) if (!isNormalizedPlatform(spec)) fail(`platforms.${userland}: "${spec}" is not a normalized OCI platform`);
  }
  if (p.match.fallback && !(p.match.fallback.userland in p.platforms)) fail(`fallback userland ${p.match.fallback.userland} has no platforms entry`);
  if (p.containerDefaults.memoryHighPercent > p.containerDefaults.memoryMaxPercent) fail('memoryHighPercent exceeds memoryMaxPercent');
}
