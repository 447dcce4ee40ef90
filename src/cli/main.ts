// The CLI as an ES module: dist/bundle/berth.mjs (scripts/bundle.mjs). bin/berth runs the code-cached
// CommonJS build of the same program instead (cjs-main.ts, code-cache.ts); this one stays for the benches
// and for loaders that import the ESM bundle.
import { ALL_VERBS } from './all-verbs.js';
import { main } from './program.js';

process.exitCode = await main(process.argv, ALL_VERBS);
