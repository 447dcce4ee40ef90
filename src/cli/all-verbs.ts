// Every verb, in the order `berth --help` lists them: the whole CLI (main.ts for the ESM bundle, cjs-main.ts
// for the code-cached one; agent-main.ts registers only `agent`).
import { registerArchive } from './archive.js';
import { registerBoard } from './board.js';
import { registerCompose } from './compose.js';
import { registerCp } from './cp.js';
import { registerDeploy } from './deploy.js';
import { registerDoctor } from './doctor.js';
import { registerEvents } from './events.js';
import { registerAttach } from './attach.js';
import { registerExec } from './exec.js';
import { registerFleet } from './fleet.js';
import { registerFlash } from './flash.js';
import { registerAgent } from './agent.js';
import { registerContainers } from './containers.js';
import { registerImages } from './images.js';
import { registerLogin } from './login.js';
import { registerNetwork } from './network.js';
import { registerPull } from './pull.js';
import { registerRun } from './run.js';
import { registerSystem } from './system.js';
import { registerVerbs } from './verbs.js';
import { registerVolume } from './volume.js';

import type { RegisterVerb } from './program.js';

export const ALL_VERBS: readonly RegisterVerb[] = [
  registerBoard,
  registerDoctor,
  registerPull,
  registerImages,
  registerArchive,
  registerLogin,
  registerRun,
  registerContainers,
  registerExec,
  registerAttach,
  registerCp,
  registerVerbs,
  registerEvents,
  registerVolume,
  registerSystem,
  registerNetwork,
  registerDeploy,
  registerCompose,
  registerAgent,
  registerFleet,
  registerFlash,
];
