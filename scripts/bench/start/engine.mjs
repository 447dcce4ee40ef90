#!/usr/bin/env node
// In-process timings for scripts/bench/start.mjs, run with plain node against the compiled berth
// (dist/), so the numbers exclude Node's start-up and module loading. Prints one JSON object on stdout.
//
//   node scripts/bench/start/engine.mjs --berth DIR --root ROOT --ref REF --runtime runc|crun --runs N
//        [--warmup 2] [--bundle B]    with --bundle also: berth-monitor spawned directly on that bundle
//
// Per iteration, timed:
//   engine:  engine.create(ref, {cmd: ['true']}) then engine.start(id): the start request until the
//            monitor has reported the container's pid (the runtime's `run --detach` returned);
//   monitor: startMonitor() on the raw bundle (the monitor alone: fork/setsid + runtime run --detach);
//   state:   `RUNTIME state <missing id>` through runtimeCall, which engine.start does before every start;
//   raw:     with --bundle, the raw runtime on that bundle, spawned from this same process right before or
//            after the engine (alternating): `runc run`, or on a hybrid host (--hybrid) crun's wrapper
//            `unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec crun --cgroup-manager=disabled run …'`.
//            Pairing them in time keeps other load on a shared machine from skewing the ratio.
// Not timed: waiting for the exit, engine.remove / runtime delete.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { EMPTY_RUN_FLAGS } from './flags.mjs';
import { openEngine } from './open-engine.mjs';

const { values: opt } = parseArgs({
  options: {
    berth: { type: 'string' },
    root: { type: 'string' },
    ref: { type: 'string' },
    runtime: { type: 'string', default: 'runc' },
    runs: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '2' },
    bundle: { type: 'string' },
    hybrid: { type: 'boolean', default: false },
  },
});
const RUNS = Number(opt.runs);
const WARMUP = Number(opt.warmup);
const dist = (p) => import(pathToFileURL(path.join(opt.berth, 'dist', p)).href);

const { detectBoard } = await dist('board/index.js');
const { hostPathsFromEnv } = await dist('host/paths.js');
const { startMonitor, readExit } = await dist('runtime/monitor.js');
const { runtimeCall, runtimeState } = await dist('runtime/oci-runtime.js');
const { runOptionsFrom } = await dist('cli/run-flags.js');

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const host = hostPathsFromEnv({});
const board = detectBoard(host);
const { images, engine, close } = await openEngine(dist, { root: opt.root, host, board, runtime: opt.runtime, version: 'bench' });
const rt = engine.runtime;
const flags = EMPTY_RUN_FLAGS;

async function waitFile(file, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!fs.existsSync(file)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${file}`);
    await sleep(5);
  }
}

const out = { runtime: rt.name, runtimeArgs: rt.globalArgs, monitorFlags: rt.monitorFlags, engine: [], create: [], start: [], state: [], monitor: [], raw: [] };
const name = images.find(opt.ref).name;
const rawRoot = fs.mkdtempSync(path.join(opt.root, `raw-${rt.name}-`));

function rawArgv(id) {
  if (rt.name === 'runc') return ['runc', '--root', rawRoot, 'run', '--bundle', opt.bundle, id];
  const crun = `crun --root ${rawRoot} ${opt.hybrid ? '--cgroup-manager=disabled ' : ''}run --bundle ${opt.bundle} ${id}`;
  return opt.hybrid ? ['unshare', '-m', 'sh', '-c', `mount -t cgroup2 none /sys/fs/cgroup && exec ${crun}`] : ['sh', '-c', `exec ${crun}`];
}

async function timeRaw(i) {
  const argv = rawArgv(`bench-raw-${process.pid}-${i}`);
  const t0 = now();
  const code = await new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (c, sig) => resolve(c ?? sig));
  });
  const ms = now() - t0;
  if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}`);
  return ms;
}

for (let i = 0; i < WARMUP + RUNS; i++) {
  const keep = i >= WARMUP;
  if (opt.bundle && i % 2 === 0) {
    const ms = await timeRaw(i);
    if (keep) out.raw.push(ms);
  }
  // engine.create + engine.start
  const t0 = now();
  const c = engine.create(name, runOptionsFrom(flags, ['true'], {}));
  const t1 = now();
  await engine.start(c.id);
  const t2 = now();
  if (keep) {
    out.create.push(t1 - t0);
    out.start.push(t2 - t1);
    out.engine.push(t2 - t0);
  }
  await engine.waitExit(c.id, 10_000);
  await engine.remove(c.id, true);

  if (opt.bundle && i % 2 === 1) {
    const ms = await timeRaw(i);
    if (keep) out.raw.push(ms);
  }

  // runtime state of an id it does not know (what engine.start asks before every start)
  const t3 = now();
  await runtimeState(rt, `bench-missing-${process.pid}`);
  if (keep) out.state.push(now() - t3);

  // berth-monitor alone on the raw bundle
  if (opt.bundle) {
    const id = `bench-mon-${process.pid}-${i}`;
    const stateDir = fs.mkdtempSync(path.join(opt.root, 'mon-'));
    const t4 = now();
    await startMonitor({ id, bundle: opt.bundle, stateDir, runtime: rt, logMaxBytes: 1 << 20, logMaxFiles: 2 });
    if (keep) out.monitor.push(now() - t4);
    await waitFile(path.join(stateDir, 'exit'));
    if (readExit(stateDir)?.exitCode !== 0) throw new Error(`monitor run ${id}: ${fs.readFileSync(path.join(stateDir, 'exit'), 'utf8')}`);
    await runtimeCall(rt, ['delete', '-f', id]);
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}
close();
fs.rmSync(rawRoot, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify(out)}\n`);
