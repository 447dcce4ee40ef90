// What every berth process does before the CLI's modules load (entry.ts, agent-entry.ts): Node's on-disk
// compile cache, then NODE_EXTRA_CA_CERTS put back.
import fs from 'node:fs';
import module from 'node:module';
import path from 'node:path';

/**
 * Where compiled code is cached: $XDG_CACHE_HOME/berth, else `<BERTH_ROOT>/cache`; NODE_COMPILE_CACHE wins.
 * Undefined (run uncached) when that is under a state root that does not exist yet: a command that never
 * makes the root (`berth compose config`, `--help`) must not make it for a cache.
 */
export function compileCacheDir(env: NodeJS.ProcessEnv): string | undefined {
  if (env.NODE_COMPILE_CACHE) return env.NODE_COMPILE_CACHE;
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'berth', 'compile');
  const root = env.BERTH_ROOT || '/var/lib/berth';
  return fs.existsSync(root) ? path.join(root, 'cache', 'compile') : undefined;
}

/**
 * Call first, then import the program: later runs skip parsing and compiling berth's code. Returns whether
 * Node's own compile cache is on (Node ≥ 22.1); on Node 20 code-cache.ts does that job for the CLI.
 */
export function startCli(): boolean {
  let cached = false;
  // Node ≥ 22.1 only (Node 20 lacks it); a cache it cannot write is skipped, never an error.
  const enable = (module as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
  const dir = compileCacheDir(process.env);
  if (enable && dir !== undefined && !process.env.NODE_DISABLE_COMPILE_CACHE) {
    try {
      enable(dir);
      cached = true;
    } catch {
      // a read-only or foreign cache dir: run uncached
    }
  }

  // bin/berth hands NODE_EXTRA_CA_CERTS over under another name, so that Node does not parse it at
  // start-up; put it back, so children and `run -e NODE_EXTRA_CA_CERTS` see what the user set. Only
  // registry TLS uses it (cli/registry.ts), and loads it there.
  if (process.env.BERTH_DEFERRED_CA_CERTS !== undefined) {
    process.env.NODE_EXTRA_CA_CERTS = process.env.BERTH_DEFERRED_CA_CERTS;
    delete process.env.BERTH_DEFERRED_CA_CERTS;
  }
  return cached;
}
