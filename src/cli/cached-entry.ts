// What bin/berth runs for every verb but `agent`: dist/bundle/berth.cjs (scripts/bundle.mjs). The prelude,
// then the CLI with its compiled code cached: by Node itself where it can (≥ 22.1), else by code-cache.ts,
// keyed by the CLI bundles' hash, which the build puts in BERTH_CLI_HASH. `run` and `create` load the slim
// bundle, cli-run.cjs; every other verb the whole CLI, cli.cjs (run-bundle.ts).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { runWithCodeCache } from './code-cache.js';
import { compileCacheDir, startCli } from './prelude.js';
import { RUN_BUNDLE_VERBS } from './run-bundle.js';

declare const BERTH_CLI_HASH: string;

const verb = verbOf(process.argv.slice(2));
const cli = fileURLToPath(new URL(RUN_BUNDLE_VERBS.includes(verb) ? './cli-run.cjs' : './cli.cjs', import.meta.url));
const cacheDir = compileCacheDir(process.env);
// Node's own cache is on (≥ 22.1), or there is nowhere to keep one (no state root yet): a plain require.
if (startCli() || cacheDir === undefined) {
  createRequire(cli)(cli);
} else {
  // One build hash for both bundles, and a cache per verb: a verb always loads the same bundle, and writing
  // one bundle's cache never drops the other's as a stale build (code-cache.ts).
  const run = runWithCodeCache({ file: cli, dir: cacheDir, build: BERTH_CLI_HASH, variant: verb });
  // At exit, the cache holds what the whole command compiled, not just what loading the CLI did.
  process.once('exit', run.save);
}

/** The verb, as bin/berth finds it: the first argument after the global options (only --root takes a value). */
function verbOf(args: readonly string[]): string {
  const verb = args[0] === '--root' ? args[2] : args[0]?.startsWith('--root=') ? args[1] : args[0];
  return verb !== undefined && /^[a-z][a-z-]*$/.test(verb) ? verb : 'other';
}
