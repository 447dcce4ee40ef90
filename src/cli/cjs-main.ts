// The whole CLI as one CommonJS file, dist/bundle/cli.cjs (scripts/bundle.mjs): CommonJS, because Node 20
// can cache compiled code only for a script (code-cache.ts), not for an ES module. cached-entry.ts runs it
// after the prelude; the ESM bundle's entry is main.ts.
import { ALL_VERBS } from './all-verbs.js';
import { main } from './program.js';

void main(process.argv, ALL_VERBS).then((code) => {
  process.exitCode = code;
});
