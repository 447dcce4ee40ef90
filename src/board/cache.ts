import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../host/fsync.js';
import type { HostPaths } from '../host/paths.js';
import { readHostText } from '../host/read.js';
import { detectBoard } from './detect.js';
import { BUILTIN_PROFILES_DIR } from './profiles.js';
import type { BoardInfo } from './select.js';

/**
 * Board detection reads a dozen host files and validates every profile (~10 ms); its result only changes
 * with a reboot, a profile edit or another berth. So commands that merely need the board (run, pull …)
 * keep it in `<state root>/cache/board.json`, keyed on all of those, and detect afresh on any mismatch.
 */
export interface BoardCache {
  /** The cache file, `boardCacheFile(root)` in the CLI. */
  readonly file: string;
  /** berth's version: another install never reads this one's cache. */
  readonly version: string;
}

export function boardCacheFile(stateRoot: string): string {
  return path.join(stateRoot, 'cache', 'board.json');
}

/**
 * The board, from the cache when its key matches this boot and these profiles, else detected and cached.
 * The file is `<sha256 of the JSON>\n<JSON>`: a torn, edited or foreign file fails the checksum, the key or
 * the shape check and is ignored (then overwritten), never trusted. Without a boot id (a BERTH_HOST_ROOT
 * fixture tree, say) nothing is cached. A cache that cannot be written is skipped: it is only a cache.
 */
export function detectBoardCached(host: HostPaths, profilesDir: string | undefined, cache: BoardCache): BoardInfo {
  const key = cacheKey(host, profilesDir, cache.version);
  if (key === undefined) return detectBoard(host, profilesDir);
  const hit = readCache(cache.file, key);
  if (hit) return hit;
  const board = detectBoard(host, profilesDir);
  writeCache(cache.file, key, board);
  return board;
}

/** Everything the detection depends on that can change without changing the boot id; undefined: do not cache. */
function cacheKey(host: HostPaths, profilesDir: string | undefined, version: string): string | undefined {
  const bootId = readHostText(host, '/proc/sys/kernel/random/boot_id')?.trim();
  if (!bootId) return undefined;
  const dir = path.resolve(profilesDir ?? BUILTIN_PROFILES_DIR);
  let profiles: string[];
  try {
    // name, size and mtime of each profile: an edit, an added or a removed file changes the key
    profiles = fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort().map((n) => {
      const st = fs.statSync(path.join(dir, n));
      return `${n}:${st.size}:${st.mtimeMs}`;
    });
  } catch {
    return undefined; // detection reports the unreadable dir
  }
  // MemTotal can change at run time (memory hotplug, a VM balloon); the budgets derive from it.
  const memTotal = /^MemTotal:.*$/m.exec(readHostText(host, '/proc/meminfo') ?? '')?.[0];
  return JSON.stringify({
    format: 1, version, build: buildStamp(), bootId, hostRoot: host.hostRoot, memTotal,
    // the userland is read from the running executable's ELF header
    exe: process.execPath, arch: process.arch, profilesDir: dir, profiles,
  });
}

/** This code's own file (a bundle chunk or dist/board/cache.js) changes with every build of berth. */
function buildStamp(): number | undefined {
  try {
    return fs.statSync(fileURLToPath(import.meta.url)).mtimeMs;
  } catch {
    return undefined;
  }
}

const sha256 = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

function readCache(file: string, key: string): BoardInfo | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const nl = text.indexOf('\n');
  const json = text.slice(nl + 1);
  if (nl !== 64 || sha256(json) !== text.slice(0, nl)) return undefined;
  try {
    const entry = JSON.parse(json) as { key?: unknown; board?: unknown };
    return entry.key === key && looksLikeBoard(entry.board) ? entry.board : undefined;
  } catch {
    return undefined;
  }
}

/** The fields every user of BoardInfo relies on; the checksum and key already rule out torn and foreign files. */
function looksLikeBoard(b: unknown): b is BoardInfo {
  if (typeof b !== 'object' || b === null) return false;
  const o = b as Record<string, unknown>;
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  return typeof o.profile === 'string' && typeof o.containerBudgetBytes === 'number' && Array.isArray(o.platforms) &&
    obj(o.containerDefaults) && obj(o.storage) && typeof o.storage.logMaxBytes === 'number' && typeof o.storage.logMaxFiles === 'number' &&
    obj(o.userland) && Array.isArray(o.notes);
}

function writeCache(file: string, key: string, board: BoardInfo): void {
  const json = JSON.stringify({ key, board });
  try {
    // Only under an existing state root: a command that would not otherwise create it does not.
    fs.mkdirSync(path.dirname(file), { mode: 0o755 });
  } catch {
    // EEXIST, or no state root yet (the write below fails too, and is skipped)
  }
  try {
    writeFileAtomic(file, `${sha256(json)}\n${json}`);
  } catch {
    // read-only or full state root, or another user's: detect again next time
  }
}
