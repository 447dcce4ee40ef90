// Runs a CommonJS file through V8 with a code cache, for Node 20, which has no `module.enableCompileCache`
// (Node ≥ 22.1 does: prelude.ts turns it on, and cached-entry.ts then simply requires the file). Without a
// cache, every `berth` command parses and compiles the CLI's code again: ~40 ms of a `berth run --rm`
// (BENCHMARKS.md, issue 22). V8's cache holds the compiled bytecode of every function that ran, so it is
// written after the command, once per verb: `berth run` then starts with run's functions compiled.
import fs from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

export interface CodeCacheOptions {
  /** The CommonJS file to run. */
  readonly file: string;
  /** Where cache files live (prelude.ts compileCacheDir); created when missing. */
  readonly dir: string;
  /** The file's content hash (from the build): a rebuilt file never meets the cache of an older one. */
  readonly build: string;
  /** What the run compiles (the verb): each has its own cache, holding the functions that one ran. */
  readonly variant: string;
}

const PREFIX = 'cli-';
const safe = (s: string): string => s.replace(/[^A-Za-z0-9.]/g, '_');

/** `cli-<build>-<variant>-<node version>-<arch>.v8`: one file per build, variant, Node and architecture. */
export function cacheFileName(build: string, variant: string): string {
  return `${PREFIX}${safe(build)}-${safe(variant)}-${process.version}-${process.arch}.v8`;
}

export interface CodeCacheRun {
  /** The module's exports. */
  readonly exports: unknown;
  /** Whether V8 took the cached code (false: compiled from source). */
  readonly cached: boolean;
  /**
   * Call when the command is done (cached-entry.ts: at process exit), so that the cache holds every
   * function the command ran. Writes only when the cache was missing or rejected; never throws.
   */
  readonly save: () => void;
}

/**
 * Loads and runs `file` as a CommonJS module of this process (its `require` resolves from its own
 * directory), with V8's compiled code from `<dir>/cacheFileName(build, variant)` when that exists and V8
 * accepts it. When it does not (missing, another V8 or other V8 flags, a torn file), the code is compiled
 * as usual and `save` writes a new cache; it also removes the caches of other builds. A cache that cannot
 * be read or written is skipped: never an error, only a slower start.
 */
export function runWithCodeCache(options: CodeCacheOptions): CodeCacheRun {
  const cacheFile = path.join(options.dir, cacheFileName(options.build, options.variant));
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // first run of this build and verb: compile, and write the cache when done
  }
  // latin1: the bundle is ASCII (scripts/bundle.mjs checks), and decoding UTF-8 took ~3× as long.
  const source = fs.readFileSync(options.file, 'latin1');
  const script = new vm.Script(Module.wrap(source), { filename: options.file, ...(cachedData && { cachedData }) });
  const cached = cachedData !== undefined && script.cachedDataRejected !== true;
  const wrapper = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
  const module = { exports: {} as unknown, filename: options.file };
  wrapper.call(module.exports, module.exports, createRequire(options.file), module, options.file, path.dirname(options.file));
  let saved = cached;
  const save = (): void => {
    if (saved) return;
    saved = true;
    writeCache(script, options.dir, cacheFile, `${PREFIX}${safe(options.build)}-`);
  };
  return { exports: module.exports, cached, save };
}

/** Replaces the cache atomically (a reader sees the old file or the whole new one) and drops stale ones. */
function writeCache(script: vm.Script, dir: string, cacheFile: string, buildPrefix: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, script.createCachedData(), { mode: 0o600 });
    fs.renameSync(tmp, cacheFile);
    // Other verbs' caches of this build stay; those of another build can never be used again.
    for (const f of fs.readdirSync(dir)) {
      if (f.startsWith(PREFIX) && f.endsWith('.v8') && !f.startsWith(buildPrefix)) fs.rmSync(path.join(dir, f), { force: true });
    }
  } catch {
    // read-only or foreign cache dir: the next start compiles again
  }
}
