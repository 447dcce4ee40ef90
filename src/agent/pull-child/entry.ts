// `berth agent-pull`'s entry point (bin/berth runs its bundle, dist/bundle/agent-pull.mjs, scripts/bundle.mjs):
// the prelude every berth process runs first (compile cache, the deferred CA file), then one pull (child.ts).
import { startCli } from '../../cli/prelude.js';

startCli();
const { servePull } = await import('./child.js');
process.exitCode = await servePull();
