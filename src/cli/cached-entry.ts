// What bin/berth runs for every verb but `agent`: dist/bundle/berth.cjs (scripts/bundle.mjs). The prelude,
// then the CLI (cli.cjs, beside this file) with its compiled code cached: by Node itself where it can
// (≥ 22.1), else by code-cache.ts, keyed by the bundle's hash, which the build puts in BERTH_CLI_HASH.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { runWithCodeCache } from './code-cache.js';
import { compileCacheDir, startCli } from './prelude.js';

declare const BERTH_CLI_HASH: string;

const cli = fileURLToPath(new URL('./cli.cjs', import.meta.url));
if (startCli()) {
  createRequire(cli)(cli);
} else {
  const run = runWithCodeCache({ file: cli, dir: compileCacheDir(process.env), build: BERTH_CLI_HASH, variant: verbOf(process.argv.slice(2)) });
  // At exit, the cache holds what the whole command compiled, not just what loading the CLI did.
  process.once('exit', run.save);
}

/** The verb, as bin/berth finds it: the first argument after the global options (only --root takes a value). */
function verbOf(args: readonly string[]): string {
  const verb = args[0] === '--root' ? args[2] : args[0]?.startsWith('--root=') ? args[1] : args[0];
  return verb !== undefined && /^[a-z][a-z-]*$/.test(verb) ? verb : 'other';
}
