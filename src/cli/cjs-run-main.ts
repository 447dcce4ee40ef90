// The slim CLI bundle, dist/bundle/cli-run.cjs (scripts/bundle.mjs): only the verbs of run.ts, so that
// `berth run` loads what it runs and not the fleet service, the agent or compose (run-bundle.ts says which
// verbs bin/berth sends here; every other one, and `berth --help`, gets the whole CLI, cjs-main.ts).
import { main } from './program.js';
import { registerRun } from './run.js';

void main(process.argv, [registerRun]).then((code) => {
  process.exitCode = code;
});
