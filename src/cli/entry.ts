// The CLI's entry point (bin/berth runs its bundle, dist/bundle/berth.mjs; `berth agent` runs
// agent-entry.ts's). The prelude turns on Node's on-disk compile cache before anything else is loaded:
// hence the program is imported, not a static import.
import { startCli } from './prelude.js';

startCli();
await import('./main.js');
