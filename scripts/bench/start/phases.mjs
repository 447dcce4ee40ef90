#!/usr/bin/env node
// Where the wall time of one `berth run --rm REF true` goes, in a fresh Node process: the same steps as
// src/cli/run.ts (withEngine, ensureImage, create, start, follow the log until exit, remove, close),
// each timed, after loading the same modules dist/cli/main.js loads. Prints one JSON object.
//
//   node scripts/bench/start/phases.mjs --berth DIR --root ROOT --ref REF [--runtime runc|crun]
//
// `nodeStartup` is the time from the process's time origin to the first line of this script. engine.start
// and engine.remove each begin with a `RUNTIME state` call (its cost is measured by start/engine.mjs).
// Works on older builds too (--berth DIR of an earlier commit): what they lack is skipped.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { EMPTY_RUN_FLAGS } from './flags.mjs';
import { openEngine } from './open-engine.mjs';

const tStart = performance.now();
const { values: opt } = parseArgs({
  options: { berth: { type: 'string' }, root: { type: 'string' }, ref: { type: 'string' }, runtime: { type: 'string' } },
});
const dist = (p) => import(pathToFileURL(path.join(opt.berth, 'dist', p)).href);
const phases = { nodeStartup: tStart };
let t = performance.now();
const lap = (name) => {
  const n = performance.now();
  phases[name] = (phases[name] ?? 0) + (n - t);
  t = n;
};

// What main.js imports (every command's module, commander), then what the run path uses.
await import('commander');
await Promise.all(['board', 'doctor', 'pull', 'images', 'login', 'run', 'containers', 'agent', 'context'].map((m) => dist(`cli/${m}.js`)));
const boardModule = await dist('board/index.js');
const { packageVersion } = await dist('cli/context.js');
const { hostPathsFromEnv } = await dist('host/paths.js');
// The image service and engine, and the composition root that builds them in builds that have one.
await Promise.all([dist('image/service.js'), dist('runtime/engine.js'), dist('root.js').catch(() => undefined)]);
const { followLogs } = await dist('runtime/logs.js');
const { runOptionsFrom } = await dist('cli/run-flags.js');
lap('importModules');

const host = hostPathsFromEnv(process.env);
// As the CLI does: the detection cache under the state root, where this build has one.
const board = boardModule.detectBoardCached
  ? boardModule.detectBoardCached(host, undefined, { file: boardModule.boardCacheFile(opt.root), version: packageVersion() })
  : boardModule.detectBoard(host);
lap('detectBoard');
const { images, engine, close } = await openEngine(dist, { root: opt.root, host, board, runtime: opt.runtime, version: packageVersion() }, lap);
const name = images.find(opt.ref).name;
const options = runOptionsFrom(EMPTY_RUN_FLAGS, ['true'], process.env);
lap('findImage');
// run --rm's lifecycle and its uncommitted exit (peek), where this build has them; older builds ignore the argument.
const lifecycle = { autoRemove: true };
const current = () => (engine.peek ? engine.peek(created.id) : engine.find(created.id));
const created = engine.create(name, options, lifecycle);
lap('create');
await engine.start(created.id, lifecycle);
lap('start');
for await (const r of followLogs(engine.stateDir(created.id), () => current().state !== 'running', undefined, true)) void r;
lap('followLogsUntilExit');
const done = current();
await engine.remove(created.id, true);
lap('remove');
close();
lap('closeStore');
if (done.exitCode !== 0) throw new Error(`container exited ${done.exitCode}`);
phases.total = performance.now();
process.stdout.write(`${JSON.stringify(phases)}\n`);
