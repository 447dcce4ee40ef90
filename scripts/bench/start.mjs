#!/usr/bin/env node
// Start benchmark: time from a start request to the container's process running, for berth's engine
// (in process) and for `berth run --rm IMG true` end to end, side by side with raw `runc run` /
// `crun run` on a bundle of the same busybox rootfs and with `podman run --rm` of the same image.
// Also the RSS of berth-monitor against podman's conmon under a running `sleep` container.
//
//   node scripts/bench/start.mjs [--runs 20] [--warmup 2] [--no-profile] [--quiet-wait 5] [--berth DIR] [--compare DIR]
//
// --compare DIR: another build (e.g. a `git archive` of main, built there) measured in the same session:
// its engine runs alternate with this build's in chunks, and its `berth run --rm` joins the interleaved
// rounds, so that load from other work on a shared machine hits both alike.
//
// Needs root and `npm ci && npm run build`. Installs what it needs when missing (scripts/setup.sh:
// docker-registry, runc, crun, busybox .debs; then podman, time). Prints a Markdown report on stdout
// and writes .cache/bench/start-<timestamp>.json (and start-latest.json); a `node --cpu-prof` profile of
// one `berth run` is kept under .cache/bench/profile/. It never writes BENCHMARKS.md.
//
// The registry and image helpers are TypeScript under test/helpers/, so like scripts/test-images.mjs
// this script re-runs itself under vite-node. The engine timings run in a plain node child
// (scripts/bench/start/engine.mjs) against dist/, so they exclude Node's start-up.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { log, prepareBench, repoRoot, sh, teardown } from './common.mjs';

const self = fileURLToPath(import.meta.url);
const helperDir = path.join(repoRoot, 'scripts/bench/start');

prepareBench(self, { packages: ['podman', 'conmon', 'runc', 'crun', 'time', 'util-linux'], rootReason: 'containers, mounts, podman' });

// ---------------------------------------------------------------------------------------------------
// Options, facts

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '2' },
    'no-profile': { type: 'boolean', default: false },
    'quiet-wait': { type: 'string', default: '5' },
    berth: { type: 'string', default: repoRoot },
    compare: { type: 'string' },
  },
});
const RUNS = Number(opt.runs);
const WARMUP = Number(opt.warmup);
const berthDir = path.resolve(opt.berth);
// What bin/berth runs: the bundle (npm run build), or for a checkout from before it, the tsc output.
const bundled = path.join(berthDir, 'dist/bundle/berth.mjs');
const berthMain = fs.existsSync(bundled) ? bundled : path.join(berthDir, 'dist/cli/main.js');
const monitorBin = path.join(berthDir, 'native/build/berth-monitor');
const compareDir = opt.compare === undefined ? undefined : path.resolve(opt.compare);
for (const f of [berthMain, monitorBin, ...(compareDir ? [path.join(compareDir, 'bin/berth'), path.join(compareDir, 'native/build/berth-monitor')] : [])]) {
  if (!fs.existsSync(f)) {
    console.error(`bench: ${f} missing; run \`npm run build\` in ${berthDir}`);
    process.exit(1);
  }
}

function machineFacts() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const first = (cmd, args) => (sh(cmd, args) ?? 'unknown').split('\n')[0];
  const cg = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return {
    date: new Date().toISOString(),
    nproc: Number(sh('nproc', [])),
    cpuModel: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown',
    memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.release(),
    os: (fs.readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m) ?? [])[1] ?? 'unknown',
    cgroups: / - cgroup2 /.test(cg) && / - cgroup /.test(cg) ? 'hybrid (v1 + v2)' : / - cgroup2 /.test(cg) ? 'unified v2' : 'v1',
    filesystem: sh('findmnt', ['-no', 'FSTYPE', '-T', os.tmpdir()]) ?? 'unknown',
    node: process.version,
    tools: {
      runc: first('runc', ['--version']),
      crun: first('crun', ['--version']),
      podman: first('podman', ['--version']),
      conmon: first('conmon', ['--version']),
    },
    berth: {
      dir: berthDir,
      commit: sh('git', ['-C', berthDir, 'rev-parse', '--short', 'HEAD']) ?? 'unknown',
      dirty: (sh('git', ['-C', berthDir, 'status', '--porcelain', 'src', 'native']) ?? '') !== '',
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Measuring

const CLK_TCK = 100;
function machineBusyS() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6]) / CLK_TCK;
}

/** Waits until the machine is idle (< 10 % of a CPU over half a second), at most --quiet-wait s. */
function waitQuiet() {
  const limit = Date.now() + Number(opt['quiet-wait']) * 1000;
  for (;;) {
    const a = machineBusyS();
    spawnSync('sleep', ['0.5']);
    if (machineBusyS() - a < 0.05) return true;
    if (Date.now() > limit) return false;
  }
}

/** Runs a command to completion; wall ms from spawn to exit (the same spawnSync overhead for every tool). */
function timed(argv, { env, detachedOutput = false } = {}) {
  const t0 = process.hrtime.bigint();
  // A created (not yet started) container holds the stdio its runtime was given: pipes would keep
  // spawnSync waiting for EOF, so `runc create` gets none.
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', detachedOutput ? 'ignore' : 'pipe', detachedOutput ? 'ignore' : 'pipe'], timeout: 60_000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status ?? r.signal}:\n${r.stderr}\n${r.stdout}`.slice(0, 4000));
  return { ms, stdout: r.stdout };
}

function run(argv, opts = {}) {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts }).trim();
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  return s[Math.floor(i)] + (s[Math.ceil(i)] - s[Math.floor(i)]) * (i - Math.floor(i));
};
const stats = (xs) => ({ n: xs.length, median: median(xs), p25: quantile(xs, 0.25), p75: quantile(xs, 0.75), min: Math.min(...xs), max: Math.max(...xs) });

function vmKiB(pid, field) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) : undefined;
}

// ---------------------------------------------------------------------------------------------------
// Setup: registry + image, berth root, raw bundle, podman storage

const facts = machineFacts();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-start-'));
const berthRoot = path.join(work, 'berth');
const runcRoot = path.join(work, 'runc-state');
const crunRoot = path.join(work, 'crun-state');
const podmanGlobal = [
  '--root', path.join(work, 'podman/storage'), '--runroot', path.join(work, 'podman/run'), '--tmpdir', path.join(work, 'podman/tmp'),
  '--runtime', 'runc', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
];
// podman runs on runc only here: on this machine's cgroup v1/v2 hybrid, podman with crun fails ("crun: cgroups
// in hybrid mode not supported"), so `berth run --rm (crun)` is compared with podman on runc.
const podmanRun = ['--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1000:1000'];
// Whole commands run through the launcher, exactly as a user types them.
const berthCmd = [path.join(berthDir, 'bin/berth'), '--root', berthRoot];
const berthRootB = path.join(work, 'berth-compare');
const berthCmdB = compareDir && [path.join(compareDir, 'bin/berth'), '--root', berthRootB];
// Each build its own compile cache: sharing one, the two builds' writes drop each other's caches as stale
// (src/cli/code-cache.ts) and every alternating run would compile the CLI again.
const cacheEnv = { XDG_CACHE_HOME: path.join(work, 'cache') };
const cacheEnvB = { XDG_CACHE_HOME: path.join(work, 'cache-compare') };

const { steps: cleanups, run: cleanup } = teardown(() => {
  // Nothing may stay mounted under the work dir before it is removed (podman's storage, a leftover rootfs).
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(`${work}/`));
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  fs.rmSync(work, { recursive: true, force: true });
});

const results = { facts, runs: RUNS, compare: compareDir, samples: {}, engine: {}, engineCompare: {}, phases: [], rss: {}, profile: undefined };

try {
  const { startRegistry } = await import('../../test/helpers/services/registry.ts');
  const { pushBusyboxImage } = await import('../../test/helpers/images/build.ts');
  const { makeBundle, hostTestArch } = await import('../../test/helpers/bundle.ts');

  log('starting a local registry and pushing the busybox image');
  const registry = await startRegistry();
  cleanups.push(() => registry.stop());
  await pushBusyboxImage(registry, 'bench/busybox', 'v1', { arches: [hostTestArch()], index: false });
  const ref = `${registry.host}/bench/busybox:v1`;

  log('pulling it with berth and with podman');
  run([...berthCmd, 'pull', '-q', ref]);
  if (berthCmdB) run([...berthCmdB, 'pull', '-q', ref]);
  run(['podman', ...podmanGlobal, 'pull', '-q', '--tls-verify=false', ref]);
  cleanups.push(() => {
    spawnSync('podman', [...podmanGlobal, 'rm', '-a', '-f', '-t', '0'], { stdio: 'ignore' });
    spawnSync('podman', [...podmanGlobal, 'rmi', '-a', '-f'], { stdio: 'ignore' });
  });

  // The raw bundle: the same busybox-static rootfs, config.json from `runc spec` running `true`.
  const bundle = await makeBundle(['true']);
  cleanups.push(() => bundle.cleanup());
  fs.mkdirSync(runcRoot);
  fs.mkdirSync(crunRoot);

  // Sanity: every command runs once (also warms the page cache) before anything is timed.
  let seq = 0;
  const rawRunc = () => ['runc', '--root', runcRoot, 'run', '--bundle', bundle.dir, `bench-runc-${process.pid}-${seq++}`];
  // crun refuses a hybrid cgroup host: it runs in a private mount namespace with a fresh cgroup2 on
  // /sys/fs/cgroup and its cgroup manager off, as berth-monitor's --private-cgroup2 does. The wrapper
  // (unshare + sh + mount) is part of what is timed; `crun-wrapper` alone times it without crun.
  const hybrid = facts.cgroups.startsWith('hybrid');
  const rawCrun = () => {
    const crun = `crun --root ${crunRoot} ${hybrid ? '--cgroup-manager=disabled ' : ''}run --bundle ${bundle.dir} bench-crun-${process.pid}-${seq++}`;
    return hybrid ? ['unshare', '-m', 'sh', '-c', `mount -t cgroup2 none /sys/fs/cgroup && exec ${crun}`] : ['sh', '-c', `exec ${crun}`];
  };
  const crunWrapper = () => (hybrid ? ['unshare', '-m', 'sh', '-c', 'mount -t cgroup2 none /sys/fs/cgroup && exec true'] : ['sh', '-c', 'exec true']);
  // runc create + start (what berth-monitor ran before `run --detach`), timed until start returns; delete afterwards, untimed.
  const rawRuncCreateStart = () => {
    const id = `bench-cs-${process.pid}-${seq++}`;
    const a = timed(['runc', '--root', runcRoot, 'create', '--bundle', bundle.dir, id], { detachedOutput: true });
    const b = timed(['runc', '--root', runcRoot, 'start', id]);
    spawnSync('runc', ['--root', runcRoot, 'delete', '-f', id], { stdio: 'ignore' });
    return a.ms + b.ms;
  };

  const e2e = {
    'node -e 0': () => timed(['node', '-e', '0']).ms,
    // Node (OpenSSL 3) parses NODE_EXTRA_CA_CERTS at start-up; bin/berth defers it (see there).
    ...(process.env.NODE_EXTRA_CA_CERTS && { 'node -e 0, NODE_EXTRA_CA_CERTS unset': () => timed(['env', '-u', 'NODE_EXTRA_CA_CERTS', 'node', '-e', '0']).ms }),
    'berth --version': () => timed([...berthCmd, '--version'], { env: cacheEnv }).ms,
    'runc run': () => timed(rawRunc()).ms,
    'runc create+start': rawRuncCreateStart,
    'crun run (wrapped)': () => timed(rawCrun()).ms,
    'crun wrapper alone': () => timed(crunWrapper()).ms,
    'berth run --rm': () => timed([...berthCmd, 'run', '--rm', '--network', 'none', ref, 'true'], { env: cacheEnv }).ms,
    'berth run --rm (crun)': () => timed([...berthCmd, 'run', '--rm', '--network', 'none', ref, 'true'], { env: { ...cacheEnv, BERTH_RUNTIME: 'crun' } }).ms,
    // The same without the default seccomp filter (issue 18): its cost is the difference, measured in the same rounds.
    'berth run --rm, seccomp=unconfined': () => timed([...berthCmd, 'run', '--rm', '--network', 'none', '--security-opt', 'seccomp=unconfined', ref, 'true'], { env: cacheEnv }).ms,
    'berth run --rm (crun), seccomp=unconfined': () => timed([...berthCmd, 'run', '--rm', '--network', 'none', '--security-opt', 'seccomp=unconfined', ref, 'true'], { env: { ...cacheEnv, BERTH_RUNTIME: 'crun' } }).ms,
    'podman run --rm': () => timed(['podman', ...podmanGlobal, 'run', ...podmanRun, ref, 'true']).ms,
    ...(berthCmdB && {
      'berth run --rm, compare build': () => timed([...berthCmdB, 'run', '--rm', '--network', 'none', ref, 'true'], { env: cacheEnvB }).ms,
      'berth run --rm (crun), compare build': () => timed([...berthCmdB, 'run', '--rm', '--network', 'none', ref, 'true'], { env: { ...cacheEnvB, BERTH_RUNTIME: 'crun' } }).ms,
    }),
  };
  log('sanity run of every command');
  for (const [name, f] of Object.entries(e2e)) {
    try {
      f();
    } catch (err) {
      throw new Error(`${name}: ${err.message}`);
    }
  }

  // 1. Engine, in process (plain node on dist/, excluding Node start-up), runc then crun. With --compare,
  //    this build and the other alternate in two chunks each.
  const engineRuns = (dir, rt, runs) => JSON.parse(run(['node', path.join(helperDir, 'engine.mjs'), '--berth', dir, '--root', dir === berthDir ? berthRoot : berthRootB,
    '--ref', ref, '--runtime', rt, '--runs', String(runs), '--warmup', String(WARMUP), '--bundle', bundle.dir, ...(hybrid ? ['--hybrid'] : [])], { maxBuffer: 16 << 20 }));
  const merge = (a, b) => (a ? Object.fromEntries(Object.entries(b).map(([k, v]) => [k, Array.isArray(v) ? [...a[k], ...v] : v])) : b);
  for (const rt of ['runc', 'crun']) {
    log(`engine in process (${rt}): ${WARMUP} warm-up + ${RUNS} runs${compareDir ? ', alternating with the compare build' : ''}`);
    waitQuiet();
    if (!compareDir) {
      results.engine[rt] = engineRuns(berthDir, rt, RUNS);
      continue;
    }
    for (const runs of [Math.ceil(RUNS / 2), Math.floor(RUNS / 2)]) {
      results.engine[rt] = merge(results.engine[rt], engineRuns(berthDir, rt, runs));
      results.engineCompare[rt] = merge(results.engineCompare[rt], engineRuns(compareDir, rt, runs));
    }
  }

  // 2. Whole commands, interleaved: every round runs each command once, in a rotating order.
  const names = Object.keys(e2e);
  for (const n of names) results.samples[n] = [];
  results.quietRounds = 0;
  log(`whole commands: ${RUNS} interleaved rounds of ${names.length}`);
  for (let round = 0; round < RUNS; round++) {
    if (waitQuiet()) results.quietRounds++;
    for (let k = 0; k < names.length; k++) {
      const n = names[(round + k) % names.length];
      results.samples[n].push(e2e[n]());
    }
  }

  // 3. Where the time of one `berth run --rm` goes: phases in fresh processes.
  log(`phases of berth run --rm: ${Math.min(RUNS, 10)} fresh processes`);
  for (let i = 0; i < Math.min(RUNS, 10); i++) {
    results.phases.push(JSON.parse(run(['node', path.join(helperDir, 'phases.mjs'), '--berth', berthDir, '--root', berthRoot, '--ref', ref])));
  }

  // 3b. What loading the CLI costs, per dependency, each in a fresh process (median of 5):
  //     the import alone, minus Node's start-up measured the same way.
  log('module load costs');
  const importMs = (spec) => {
    const code = `const t=performance.now();await import(${JSON.stringify(spec)});process.stdout.write(String(performance.now()-t))`;
    return median(Array.from({ length: 5 }, () => Number(run(['node', '--input-type=module', '-e', code], { cwd: berthDir }))));
  };
  results.imports = {};
  for (const m of ['commander', 'better-sqlite3', 'koffi', 'tar-stream']) results.imports[m] = importMs(m);
  for (const m of ['runtime/engine.js', 'image/service.js', 'board/index.js', 'cli/doctor.js', 'cli/agent.js']) results.imports[`dist/${m}`] = importMs(pathToFileURL(path.join(berthDir, 'dist', m)).href);
  // Everything main.js imports, without running a command.
  const cliUrls = ['board', 'doctor', 'pull', 'images', 'login', 'run', 'containers', 'agent'].map((c) => pathToFileURL(path.join(berthDir, 'dist/cli', `${c}.js`)).href);
  results.imports['all CLI modules (main.js graph)'] = median(Array.from({ length: 5 }, () => {
    const code = `const t=performance.now();await import('commander');await Promise.all(${JSON.stringify(cliUrls)}.map((u)=>import(u)));process.stdout.write(String(performance.now()-t))`;
    return Number(run(['node', '--input-type=module', '-e', code], { cwd: berthDir }));
  }));

  // 4. Resident memory of the per-container monitor: berth-monitor (runc and crun) vs podman's conmon,
  //    each under a running `sleep` container; peak RSS of the starting commands from GNU time.
  log('RSS of berth-monitor and conmon under a sleep container');
  const settle = () => spawnSync('sleep', ['1']);
  for (const rt of ['runc', 'crun']) {
    // berth picks the runtime per command (BERTH_RUNTIME), not from the container's record: rm must
    // get the same BERTH_RUNTIME, or `rm -f` of a crun container fails and leaves it running.
    const env = { ...process.env, BERTH_RUNTIME: rt };
    const id = run([...berthCmd, 'run', '-d', ref, 'sleep', '600'], { env });
    const rm = () => {
      const r = spawnSync(berthCmd[0], [...berthCmd.slice(1), 'rm', '-f', id], { env, encoding: 'utf8' });
      if (r.status !== 0) log(`berth rm -f ${id.slice(0, 12)} (${rt}): ${r.stderr.trim()}`);
    };
    cleanups.push(rm);
    settle();
    const { pid } = JSON.parse(fs.readFileSync(path.join(berthRoot, 'containers', id, 'state/monitor.pid'), 'utf8'));
    results.rss[`berth-monitor (${rt})`] = { pid, vmRssKiB: vmKiB(pid, 'VmRSS'), vmHwmKiB: vmKiB(pid, 'VmHWM') };
    rm();
    cleanups.pop();
  }
  {
    const id = run(['podman', ...podmanGlobal, 'run', '-d', ...podmanRun.filter((a) => a !== '--rm'), ref, 'sleep', '600']);
    const rm = () => spawnSync('podman', [...podmanGlobal, 'rm', '-f', '-t', '0', id], { stdio: 'ignore' });
    cleanups.push(rm);
    settle();
    const pid = Number(run(['podman', ...podmanGlobal, 'inspect', '-f', '{{.State.ConmonPid}}', id]));
    results.rss['conmon (podman, runc)'] = { pid, vmRssKiB: vmKiB(pid, 'VmRSS'), vmHwmKiB: vmKiB(pid, 'VmHWM') };
    rm();
    cleanups.pop();
  }
  const peak = (argv, env) => {
    const tf = path.join(work, 'time.out');
    run(['/usr/bin/time', '-f', '%M', '-o', tf, ...argv], { env: { ...process.env, ...env } });
    return Number(fs.readFileSync(tf, 'utf8').trim().split('\n').at(-1));
  };
  results.peakRssKiB = {
    'berth run --rm (node)': peak([...berthCmd, 'run', '--rm', '--network', 'none', ref, 'true']),
    'podman run --rm': peak(['podman', ...podmanGlobal, 'run', ...podmanRun, ref, 'true']),
    'runc run': peak(rawRunc()),
  };

  // 4b. What one `berth run --rm` executes and syncs (strace, when installed): every execve, and the
  //     fsync/fdatasync calls with their durations.
  if (sh('strace', ['-V'])) {
    const tf = path.join(work, 'strace.out');
    run(['strace', '-f', '-qq', '-T', '-s', '256', '-e', 'trace=execve,fsync,fdatasync', '-o', tf, ...berthCmd, 'run', '--rm', '--network', 'none', ref, 'true']);
    // strace splits a call that another process interrupts into `… <unfinished ...>` and `<... NAME resumed>…`
    // lines of the same pid: join them, so that interleaved execs and fsyncs count too.
    const pending = new Map();
    const joined = [];
    for (const l of fs.readFileSync(tf, 'utf8').split('\n')) {
      const pid = l.split(' ', 1)[0];
      if (l.endsWith('<unfinished ...>')) pending.set(pid, l.slice(0, -'<unfinished ...>'.length));
      else if (/^\S+ <\.\.\. \w+ resumed>/.test(l)) {
        joined.push(`${pending.get(pid) ?? ''}${l.replace(/^\S+ <\.\.\. \w+ resumed>/, '')}`);
        pending.delete(pid);
      } else joined.push(l);
    }
    const calls = joined.filter((l) => /execve\(|fsync\(|fdatasync\(/.test(l) && !/= -1 /.test(l));
    const execs = calls.filter((l) => l.includes('execve(')).map((l) => l.match(/execve\("([^"]+)", \[([^\]]*)\]/)).filter(Boolean)
      .map((m) => {
        const argv = m[2].split(', ').map((a) => a.replace(/^"|"(\.\.\.)?$/g, ''));
        const verb = argv.slice(1).find((a) => !a.startsWith('-') && !a.startsWith('/') && !/^\d+$/.test(a) && a.length < 20);
        return `${path.basename(argv[0])}${verb ? ` ${verb}` : ''}`;
      });
    const syncs = calls.filter((l) => /f(data)?sync\(/.test(l)).map((l) => Number(l.match(/<([\d.]+)>/)?.[1] ?? 0) * 1000);
    results.strace = { execs: execs.slice(1), fsyncs: syncs.length, fsyncMs: syncs.reduce((a, b) => a + b, 0) };
  }

  // 5. One `berth run --rm` under node --cpu-prof, summarized by self time.
  if (!opt['no-profile']) {
    log('profiling one berth run --rm');
    const dir = path.join(repoRoot, '.cache/bench/profile');
    fs.mkdirSync(dir, { recursive: true });
    const name = `start-${Date.now()}.cpuprofile`;
    run(['node', '--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', name, berthMain, '--root', berthRoot, 'run', '--rm', '--network', 'none', ref, 'true']);
    results.profile = { file: path.relative(repoRoot, path.join(dir, name)), ...summarizeProfile(JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'))) };
  }
} finally {
  await cleanup();
}

// ---------------------------------------------------------------------------------------------------
// Profile summary

function summarizeProfile(p) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = p.timeDeltas;
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (dt[i] ?? 0) / 1000);
  const bucket = (url, fn) => {
    if (!url) return fn.startsWith('(') ? fn : '(native/builtin)';
    if (url.startsWith('node:')) return url.includes('modules/esm') || url.includes('modules/cjs') ? 'node: module loader' : 'node: internals';
    const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
    if (m) return `node_modules/${m[1]}`;
    const d = url.match(/\/dist\/(.*)$/);
    if (d) return `dist/${d[1].split('/').slice(0, -1).join('/') || d[1]}`;
    return url;
  };
  const byBucket = {};
  const byFn = {};
  for (const [id, ms] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const b = bucket(cf.url, cf.functionName);
    byBucket[b] = (byBucket[b] ?? 0) + ms;
    const key = `${cf.functionName || '(anonymous)'} ${cf.url ? `${cf.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${cf.lineNumber + 1}` : ''}`.trim();
    byFn[key] = (byFn[key] ?? 0) + ms;
  }
  const top = (o, k) => Object.entries(o).sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, ms]) => ({ name, ms: Math.round(ms * 10) / 10 }));
  return { durationMs: (p.endTime - p.startTime) / 1000, byBucket: top(byBucket, 14), topFunctions: top(byFn, 15) };
}

// ---------------------------------------------------------------------------------------------------
// Report

const f1 = (x) => (x === undefined ? '–' : x.toFixed(1));
const row = (name, xs, what) => {
  const s = stats(xs);
  return `| ${name} | ${f1(s.median)} | ${f1(s.p25)}–${f1(s.p75)} | ${f1(s.min)}–${f1(s.max)} | ${what} |`;
};
const E = results.engine;
const EC = results.engineCompare;
const S = results.samples;
const med = (xs) => median(xs);
const lines = [];
lines.push(`Machine: ${facts.nproc} × ${facts.cpuModel}, ${facts.memTotalMiB} MiB, kernel ${facts.kernel}, ${facts.os}, cgroups ${facts.cgroups}, ${facts.filesystem}; Node ${facts.node}; ${facts.tools.runc}, ${facts.tools.crun}, ${facts.tools.podman}, ${facts.tools.conmon}. berth ${facts.berth.commit}${facts.berth.dirty ? ' (dirty)' : ''}. ${facts.date}.`);
lines.push('');
lines.push(`${RUNS} runs each (engine: after ${WARMUP} warm-up runs; whole commands: interleaved rounds, ${results.quietRounds}/${RUNS} started on an idle machine). Times in ms.`);
lines.push('');
lines.push('| what | median | p25–p75 | min–max | measured |');
lines.push('| --- | ---: | ---: | ---: | --- |');
for (const rt of ['runc', 'crun']) {
  lines.push(row(`engine create+start (${rt})`, E[rt].engine, 'in process: `engine.create` + `engine.start` until the monitor reports the pid'));
  lines.push(row(`… engine.create (${rt})`, E[rt].create, 'rootfs overlay mount, spec, SQLite insert'));
  lines.push(row(`… engine.start (${rt})`, E[rt].start, 'monitor (one `runtime run --detach`; `create` + `start` in builds before start-perf2) + SQLite update'));
  lines.push(row(`… \`${rt} state\` probe`, E[rt].state, 'a bare `state` call, for scale (engine.start no longer makes one)'));
  lines.push(row(`berth-monitor alone (${rt})`, E[rt].monitor, 'in process: `startMonitor` on the raw bundle'));
  if (EC[rt]) {
    lines.push(row(`engine create+start (${rt}), compare build`, EC[rt].engine, 'the same, --compare build, alternating with this one'));
    lines.push(row(`raw \`${rt} run\`, paired with the compare build`, EC[rt].raw, 'spawned alternating with the compare build\'s engine'));
  }
  lines.push(row(`raw \`${rt} run\`, paired`, E[rt].raw, rt === 'crun' && facts.cgroups.startsWith('hybrid') ? 'spawned from the same process, alternating with the engine (wrapped as below)' : 'spawned from the same process, alternating with the engine'));
}
const whatE2E = {
  'node -e 0': process.env.NODE_EXTRA_CA_CERTS ? 'Node start-up alone (with this environment\'s NODE_EXTRA_CA_CERTS)' : 'Node start-up alone',
  'node -e 0, NODE_EXTRA_CA_CERTS unset': 'the same without it: what bin/berth\'s Node pays',
  'berth --version': 'Node + loading every CLI module',
  'runc run': 'raw runtime on the bundle: create, start, wait, delete',
  'runc create+start': 'raw runtime, two calls, until `start` returns (what the monitor ran before start-perf2)',
  'crun run (wrapped)': '`unshare -m sh -c \'mount -t cgroup2 … && crun --cgroup-manager=disabled run …\'`',
  'crun wrapper alone': 'the same wrapper running `true` instead of crun',
  'berth run --rm': '`bin/berth run --rm IMG true` end to end (runc)',
  'berth run --rm (crun)': 'the same with `BERTH_RUNTIME=crun`',
  'podman run --rm': '`podman run --rm --network none --ulimit … IMG true` (runc, cgroupfs)',
  'berth run --rm, compare build': `the same with the --compare build (${compareDir})`,
  'berth run --rm (crun), compare build': 'the same with `BERTH_RUNTIME=crun`',
};
for (const n of Object.keys(S)) lines.push(row(n, S[n], whatE2E[n] ?? ''));
lines.push('');

const engRunc = med(E.runc.engine);
const engCrun = med(E.crun.engine);
// The goal's ratio uses the raw runs paired in time with the engine's (same process, alternating).
const rawRuncMs = med(E.runc.raw);
const rawCrunMs = med(E.crun.raw);
const e2eMs = med(S['berth run --rm']);
const podMs = med(S['podman run --rm']);
const monRss = results.rss['berth-monitor (runc)']?.vmRssKiB;
const conRss = results.rss['conmon (podman, runc)']?.vmRssKiB;
const goals = [
  ['engine overhead ≤ 1.5× raw runtime (runc)', `engine ${f1(engRunc)} / paired \`runc run\` ${f1(rawRuncMs)} = ${(engRunc / rawRuncMs).toFixed(2)}×`, engRunc / rawRuncMs <= 1.5],
  ['… same, crun', `engine ${f1(engCrun)} / paired wrapped \`crun run\` ${f1(rawCrunMs)} = ${(engCrun / rawCrunMs).toFixed(2)}×`, engCrun / rawCrunMs <= 1.5],
  ['`berth run` end to end faster than `podman run`', `${f1(e2eMs)} / ${f1(podMs)} = ${(e2eMs / podMs).toFixed(2)}×`, e2eMs < podMs],
  // Issue 22's goal, for each of berth's runtimes against podman (runc: see podmanGlobal).
  ['issue 22: `berth run --rm` ≤ 0.7× `podman run --rm` (runc)', `${f1(e2eMs)} / ${f1(podMs)} = ${(e2eMs / podMs).toFixed(2)}×`, e2eMs / podMs <= 0.7],
  ['… berth on crun', `${f1(med(S['berth run --rm (crun)']))} / ${f1(podMs)} = ${(med(S['berth run --rm (crun)']) / podMs).toFixed(2)}×`, med(S['berth run --rm (crun)']) / podMs <= 0.7],
  ...(compareDir ? [
    ['compare build: engine / raw (runc)', `${f1(med(EC.runc.engine))} / ${f1(med(EC.runc.raw))} = ${(med(EC.runc.engine) / med(EC.runc.raw)).toFixed(2)}×`, med(EC.runc.engine) / med(EC.runc.raw) <= 1.5],
    ['compare build: engine / raw (crun)', `${f1(med(EC.crun.engine))} / ${f1(med(EC.crun.raw))} = ${(med(EC.crun.engine) / med(EC.crun.raw)).toFixed(2)}×`, med(EC.crun.engine) / med(EC.crun.raw) <= 1.5],
    ['compare build: `berth run` vs `podman run`', `${f1(med(S['berth run --rm, compare build']))} / ${f1(podMs)} = ${(med(S['berth run --rm, compare build']) / podMs).toFixed(2)}×`, med(S['berth run --rm, compare build']) < podMs],
  ] : []),
  ['monitor RSS below conmon\'s', `${monRss} KiB vs ${conRss} KiB`, monRss !== undefined && conRss !== undefined && monRss < conRss],
];
lines.push('| goal | measured (medians) | met |');
lines.push('| --- | --- | --- |');
for (const [g, m, ok] of goals) lines.push(`| ${g} | ${m} | ${ok ? 'yes' : '**no**'} |`);
results.goals = goals.map(([goal, measured, met]) => ({ goal, measured, met }));
lines.push('');

lines.push('Resident memory (KiB):');
lines.push('');
lines.push('| process | VmRSS | VmHWM |');
lines.push('| --- | ---: | ---: |');
for (const [n, r] of Object.entries(results.rss)) lines.push(`| ${n} under \`sleep\` | ${r.vmRssKiB} | ${r.vmHwmKiB} |`);
for (const [n, k] of Object.entries(results.peakRssKiB ?? {})) lines.push(`| ${n}, peak (GNU time) | | ${k} |`);
lines.push('');

if (results.phases.length) {
  const keys = Object.keys(results.phases[0]);
  lines.push(`Phases of one \`berth run --rm IMG true\` (runc) in a fresh node process, medians of ${results.phases.length} (ms):`);
  lines.push('');
  lines.push('| phase | median |');
  lines.push('| --- | ---: |');
  for (const k of keys) lines.push(`| ${k} | ${f1(median(results.phases.map((p) => p[k])))} |`);
  lines.push('');
}
if (results.strace) {
  lines.push(`One \`berth run --rm\` under strace: ${results.strace.execs.length} programs executed after node (\`${results.strace.execs.join('`, `')}\`); ${results.strace.fsyncs} fsync/fdatasync calls, ${f1(results.strace.fsyncMs)} ms in total.`);
  lines.push('');
}
if (results.imports) {
  lines.push('Import cost in a fresh node process, medians of 5 (ms; each includes what it imports in turn): ' + Object.entries(results.imports).map(([m, ms]) => `${m} ${f1(ms)}`).join(' · '));
  lines.push('');
}
if (results.profile) {
  lines.push(`\`node --cpu-prof\` of one \`berth run --rm\` (${f1(results.profile.durationMs)} ms profiled; \`${results.profile.file}\`), self time by where the code lives:`);
  lines.push('');
  lines.push(results.profile.byBucket.map((b) => `${b.name} ${b.ms}`).join(' · '));
  lines.push('');
  lines.push('Top functions by self time: ' + results.profile.topFunctions.map((b) => `${b.name} ${b.ms}`).join(' · '));
  lines.push('');
}

const report = lines.join('\n');
process.stdout.write(`${report}\n`);
const outDir = path.join(repoRoot, '.cache/bench');
fs.mkdirSync(outDir, { recursive: true });
const stamp = facts.date.replace(/[:.]/g, '-');
const json = JSON.stringify({ ...results, report }, null, 2);
fs.writeFileSync(path.join(outDir, `start-${stamp}.json`), json);
fs.writeFileSync(path.join(outDir, 'start-latest.json'), json);
log(`wrote .cache/bench/start-${stamp}.json`);
