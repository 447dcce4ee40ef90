// `berth agent` on its own: the same program as main.ts with only the agent verb registered, so the
// agent's bundle (dist/bundle/agent.mjs, scripts/bundle.mjs) holds none of the other verbs' code.
// bin/berth runs it when the verb is `agent`; anything else it would be asked goes through main.ts.
import { registerAgent } from './agent.js';
import { main } from './program.js';

process.exitCode = await main(process.argv, [registerAgent]);
