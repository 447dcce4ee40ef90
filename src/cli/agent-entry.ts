// `berth agent`'s entry point (bin/berth runs its bundle, dist/bundle/agent.mjs: one file, scripts/bundle.mjs).
// As entry.ts: the prelude first, then the program, imported after it.
import { startCli } from './prelude.js';

startCli();
await import('./agent-main.js');
