#!/usr/bin/env node
// Pull benchmark: berth vs `skopeo copy` + `umoci unpack` vs the floor (`curl … | tar -xz` per layer),
// pulling and unpacking the same images from the same local registry. See scripts/bench/README.md.
//
//   node scripts/bench/pull.mjs [--runs 5] [--images realistic,random,big] [--tools berth,skopeo,floor]
//        [--random-mb 64] [--big-mb 256] [--big-runs 2] [--profile] [--berth DIR] [--node-args ARGS]
//        [--fs loop|dir] [--no-drop-caches] [--quiet-wait 20] [--keep] [--serve] [--unbundled]
//
// Needs root (umoci unpack, chown of unpacked files, loop mounts, drop_caches) and `npm ci && npm run build`.
// Installs the Debian packages it needs (scripts/setup.sh, then skopeo, umoci, time …) when missing.
// Prints a table and writes .cache/bench/pull-<timestamp>.json (and pull-latest.json). It never
// writes BENCHMARKS.md: copy the numbers there by hand.
//
// The image builder and registry helpers are TypeScript under test/helpers/, so like
// scripts/test-images.mjs this script re-runs itself under vite-node (shipped with vitest).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { log, prepareBench, repoRoot, sh } from './common.mjs';

const self = fileURLToPath(import.meta.url);

prepareBench(self, { packages: ['skopeo', 'umoci', 'time', 'curl', 'tar', 'gzip', 'e2fsprogs', 'mount'], rootReason: 'umoci unpack, unpacked file owners, drop_caches' });

// ---------------------------------------------------------------------------------------------------
// Options

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    images: { type: 'string', default: 'realistic,random,big' },
    'random-mb': { type: 'string', default: '64' },
    'big-mb': { type: 'string', default: '256' },
    'big-runs': { type: 'string', default: '2' },
    'no-drop-caches': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    berth: { type: 'string', default: repoRoot },
    keep: { type: 'boolean', default: false },
    serve: { type: 'boolean', default: false },
    fs: { type: 'string', default: 'loop' },
    'quiet-wait': { type: 'string', default: '20' },
    tools: { type: 'string', default: 'berth,skopeo,floor' },
    // bin/berth's own node flags, so the benchmark measures what users run.
    'node-args': { type: 'string', default: '--max-semi-space-size=1 --expose-gc' },
    // What-if: tsc's unbundled dist/cli/main.js (~150 modules for a pull) instead of bin/berth's bundle.
    unbundled: { type: 'boolean', default: false },
  },
});
const RUNS = Number(opt.runs);
const BIG_RUNS = Number(opt['big-runs']);
const IMAGES = opt.images.split(',').filter(Boolean);
const TOOL_NAMES = opt.tools.split(',').filter(Boolean);
/** Extra node options for berth's process only (what-if runs: `--node-args=--max-semi-space-size=2`). */
const NODE_ARGS = opt['node-args'].split(' ').filter(Boolean);
const bad = [
  ...IMAGES.filter((i) => !['realistic', 'random', 'big'].includes(i)).map((i) => `image ${i}`),
  ...TOOL_NAMES.filter((t) => !['berth', 'skopeo', 'floor'].includes(t)).map((t) => `tool ${t}`),
  ...(['loop', 'dir'].includes(opt.fs) ? [] : [`--fs ${opt.fs}`]),
  ...(RUNS >= 1 && BIG_RUNS >= 1 ? [] : ['--runs/--big-runs must be ≥ 1']),
];
if (bad.length > 0) {
  console.error(`bench: unknown ${bad.join(', ')}; see scripts/bench/README.md`);
  process.exit(2);
}
const berthDir = path.resolve(opt.berth);
// The bundle bin/berth runs: the unbundled tree loads ~3× the code, whose heap showed in the peak RSS.
const berthMain = path.join(berthDir, opt.unbundled ? 'dist/cli/main.js' : 'dist/bundle/berth.mjs');
if (!fs.existsSync(berthMain)) {
  console.error(`bench: ${berthMain} missing; run \`npm run build\` in ${berthDir}`);
  process.exit(1);
}
const MiB = 1024 * 1024;
/** bin/berth's environment for node (one malloc arena unless set), so the bench measures what users run. */
const BERTH_ENV = { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '1' };

// ---------------------------------------------------------------------------------------------------
// Machine facts

function machineFacts() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const version = (cmd, args, re) => (sh(cmd, args) ?? '').split('\n')[0].match(re)?.[0] ?? 'unknown';
  return {
    date: new Date().toISOString(),
    nproc: Number(sh('nproc', [])),
    cpuModel: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown',
    memTotalMiB: Math.round(os.totalmem() / MiB),
    kernel: os.release(),
    os: (fs.readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m) ?? [])[1] ?? 'unknown',
    node: process.version,
    filesystem: sh('findmnt', ['-no', 'FSTYPE', '-T', os.tmpdir()]) ?? 'unknown',
    tools: {
      skopeo: version('skopeo', ['--version'], /[\d.]+\S*$/),
      umoci: version('umoci', ['--version'], /[\d.]+\S*$/),
      curl: version('curl', ['--version'], /curl [\d.]+/),
      tar: version('tar', ['--version'], /[\d.]+$/),
      gzip: version('gzip', ['--version'], /[\d.]+$/),
      registry: version('dpkg-query', ['-W', '-f=${Version}', 'docker-registry'], /.+/),
    },
    berth: {
      dir: berthDir,
      commit: sh('git', ['-C', berthDir, 'rev-parse', '--short', 'HEAD']) ?? process.env.BERTH_BENCH_COMMIT ?? 'unknown',
      dirty: (sh('git', ['-C', berthDir, 'status', '--porcelain', 'src']) ?? '') !== '',
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Images

/**
 * Files of this machine under `rel` (relative to `base`), in sorted order, until the layer holds about
 * `capBytes`: directories, regular files and symlinks (files that would overshoot the cap are skipped).
 * The cap counts every path, so hardlinked files (Mesa's dri/*.so) count each time although tar stores
 * them once, as hardlink entries: the tar can be smaller than the cap.
 */
function selectFiles(base, rel, capBytes) {
  const out = [];
  let bytes = 0;
  let files = 0;
  const walk = (r) => {
    let names;
    try {
      names = fs.readdirSync(path.join(base, r)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (bytes >= capBytes) return;
      const p = `${r}/${name}`;
      let st;
      try {
        st = fs.lstatSync(path.join(base, p));
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        out.push(p);
        walk(p);
      } else if (st.isSymbolicLink()) {
        out.push(p);
      } else if (st.isFile()) {
        if (bytes + st.size > capBytes) continue;
        try {
          fs.accessSync(path.join(base, p), fs.constants.R_OK);
        } catch {
          continue;
        }
        out.push(p);
        bytes += st.size;
        files++;
      }
    }
  };
  out.push(rel);
  walk(rel);
  return { list: out, bytes, files };
}

/** An uncompressed tar (GNU tar, owner 0:0) of selected files of this machine, named under `prefix`. */
function tarOfHostFiles(base, rel, capMiB, prefix) {
  const { list, bytes, files } = selectFiles(base, rel, capMiB * MiB);
  const args = ['-C', base, '-cf', '-', '--no-recursion', '--null', '-T', '-', '--owner=0', '--group=0', '--numeric-owner'];
  if (prefix) args.push(`--transform=s,^,${prefix},S`);
  const tar = execFileSync('tar', args, { input: list.join('\0'), maxBuffer: 2 * 1024 * MiB, stdio: ['pipe', 'pipe', 'ignore'] });
  return { tar, files, bytes, entries: list.length, source: `${prefix ?? ''}${rel}` };
}

function multiarchLibDir() {
  const triplet = sh('gcc', ['-print-multiarch']) || (process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu');
  return `usr/lib/${triplet}`;
}

/**
 * A realistic, compressible image from real files of this machine: shared libraries, executables,
 * /usr/share (many small text files), and an app layer of the repo's own node_modules.
 */
function nodeModulesLayer() {
  const real = fs.realpathSync(path.join(repoRoot, 'node_modules'));
  return tarOfHostFiles(path.dirname(real), path.basename(real), 40, 'app/');
}

function realisticLayers() {
  return [
    tarOfHostFiles('/', multiarchLibDir(), 64),
    tarOfHostFiles('/', 'usr/bin', 48),
    tarOfHostFiles('/', 'usr/share', 40),
    // Through a symlinked node_modules (a git worktree sharing another checkout's) the layer would hold
    // the link and then entries under it, which berth rightly refuses: tar the directory it leads to.
    nodeModulesLayer(),
  ];
}

async function buildImages(registry) {
  const { pushBusyboxImage, pushSinglePlatformImage } = await import('../../test/helpers/images/build.ts');
  const platform = { os: 'linux', architecture: 'amd64' };
  const images = [];
  const summarize = (name, ref, manifest, layerInfo, note) => ({
    name,
    ref,
    note,
    layers: manifest.layers.map((l, i) => ({ digest: l.digest, compressed: l.size, ...(layerInfo?.[i] ?? {}) })),
    compressed: manifest.layers.reduce((n, l) => n + l.size, 0),
    uncompressed: layerInfo ? layerInfo.reduce((n, l) => n + l.uncompressed, 0) : undefined,
  });
  if (IMAGES.includes('realistic')) {
    log('building the realistic image from files of this machine (gzip -6, takes a while)');
    const layers = realisticLayers();
    const m = await pushSinglePlatformImage(registry, 'bench/realistic', 'v1', { platform, layers: layers.map((l) => l.tar) });
    const info = layers.map((l) => ({ source: l.source, files: l.files, entries: l.entries, uncompressed: l.tar.length }));
    images.push(summarize('realistic', `${registry.host}/bench/realistic:v1`, m, info, 'libs, bins, /usr/share, node_modules of this machine; gzip -6'));
  }
  const busybox = async (name, mb) => {
    log(`building the ${name} image (busybox + ${mb} MiB PRNG layer)`);
    const img = await pushBusyboxImage(registry, `bench/${name}`, 'v1', { arches: ['amd64'], index: false, bigLayerMB: mb });
    const m = img.manifests[0];
    images.push(summarize(name, `${registry.host}/bench/${name}:v1`, m, undefined, `busybox + ${mb} MiB incompressible PRNG layer`));
  };
  if (IMAGES.includes('random')) await busybox('random', Number(opt['random-mb']));
  if (IMAGES.includes('big')) await busybox('big', Number(opt['big-mb']));
  return images;
}

// ---------------------------------------------------------------------------------------------------
// Running and measuring

let dropCaches = !opt['no-drop-caches'];
function coldCaches() {
  spawnSync('sync');
  if (!dropCaches) return;
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch (err) {
    log(`cannot drop caches (${err.message}); measuring with warm caches`);
    dropCaches = false;
  }
}

/** Runs one command under GNU time: wall ms (measured here), peak RSS KiB, user and sys CPU seconds. */
function timed(argv, { env } = {}) {
  const tf = path.join(os.tmpdir(), `berth-bench-time-${process.pid}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', '-o', tf, ...argv], {
    encoding: 'utf8',
    maxBuffer: 64 * MiB,
    env: { ...process.env, ...env },
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) {
    throw new Error(`${argv.join(' ')} exited ${r.status}:\n${r.stderr}\n${r.stdout}`.slice(0, 4000));
  }
  const [rss, user, sys] = fs.readFileSync(tf, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  fs.rmSync(tf, { force: true });
  return { ms, rssKiB: rss, cpuS: user + sys };
}

/** `sync` after a tool, timed separately: berth syncs its snapshots itself, the others leave dirty pages. */
function timedSync() {
  const t0 = process.hrtime.bigint();
  spawnSync('sync');
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * Where one run writes. `loop` (default): a fresh ext4 (with journal, as on a board's SD card) on a loop
 * device for every run, so each tool starts from the same empty filesystem. Deleting tens of thousands
 * of unpacked files between runs on a long-lived filesystem skews later runs: ext4 without a journal
 * (this VM's root) scans recently deleted inodes on every allocation. `dir`: a directory under the temp dir.
 */
let interrupted;
let fsMode = opt.keep ? 'dir' : opt.fs; // --keep keeps outputs in plain directories
/** Filesystems still mounted, unmounted on the way out even when a run fails. */
const liveFs = new Set();
function freshFs(work, name, bytes) {
  const t = makeFs(work, name, bytes);
  const target = { dir: t.dir, cleanup: () => { liveFs.delete(target); t.cleanup(); } };
  liveFs.add(target);
  return target;
}

function makeFs(work, name, bytes) {
  const dir = fs.mkdtempSync(path.join(work, `${name}-`));
  if (fsMode === 'loop') {
    const img = `${dir}.img`;
    let loop;
    try {
      fs.writeFileSync(img, '');
      fs.truncateSync(img, Math.max(1024 * MiB, Math.ceil(bytes / MiB) * MiB));
      execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', img], { stdio: 'ignore' });
      loop = execFileSync('losetup', ['-f', '--show', '--direct-io=on', img], { encoding: 'utf8' }).trim();
      execFileSync('mount', [loop, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
      return {
        dir,
        cleanup() {
          execFileSync('umount', [dir]);
          execFileSync('losetup', ['-d', loop]);
          fs.rmSync(img, { force: true });
          fs.rmdirSync(dir);
        },
      };
    } catch (err) {
      if (loop) spawnSync('losetup', ['-d', loop]);
      fs.rmSync(img, { force: true });
      log(`cannot use a loop-mounted ext4 (${String(err.message).split('\n')[0]}); writing to ${work} instead`);
      fsMode = 'dir';
    }
  }
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

const CLK_TCK = 100;
/** Non-idle CPU seconds of the whole machine so far (user, nice, system, irq, softirq; not iowait or steal). */
function machineBusyS() {
  const f = cpuTimes();
  return (f[0] + f[1] + f[2] + f[5] + f[6]) / CLK_TCK;
}

/** CPU time the hypervisor gave to other guests while this one wanted to run. */
function machineStealS() {
  return cpuTimes()[7] / CLK_TCK;
}

function cpuTimes() {
  return fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
}

/** CPU seconds a process has used (utime + stime), 0 once it is gone. */
function processCpuS(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** The registry daemon's pid, found by its private config path, to tell its CPU from other load. */
function registryPid(registry) {
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(registry.dir)) return Number(pid);
    } catch {
      // gone
    }
  }
  return undefined;
}

/**
 * Waits until the machine is idle (< 10 % of one CPU busy over half a second), at most --quiet-wait
 * seconds: others' builds and tests on the same machine distort a run far more than any drift.
 */
function waitQuiet() {
  const limit = Date.now() + Number(opt['quiet-wait']) * 1000;
  const t0 = Date.now();
  for (;;) {
    const a = machineBusyS();
    spawnSync('sleep', ['0.5']);
    const busy = machineBusyS() - a;
    if (busy < 0.05) return { waitedS: (Date.now() - t0) / 1000, quiet: true };
    if (Date.now() > limit) return { waitedS: (Date.now() - t0) / 1000, quiet: false };
  }
}

const TOOLS = {
  berth: {
    label: 'berth pull',
    run(image, dir) {
      const p = timed(['node', ...NODE_ARGS, berthMain, '--root', path.join(dir, 'root'), 'pull', '-q', '--platform', 'linux/amd64', image.ref], { env: BERTH_ENV });
      return { ms: p.ms, cpuS: p.cpuS, rss: { berth: p.rssKiB }, out: path.join(dir, 'root/snapshots') };
    },
  },
  skopeo: {
    label: 'skopeo copy + umoci unpack',
    run(image, dir) {
      const layout = `${path.join(dir, 'oci')}:v1`;
      const a = timed(['skopeo', 'copy', '-q', '--src-tls-verify=false', `docker://${image.ref}`, `oci:${layout}`]);
      const b = timed(['umoci', '--log', 'error', 'unpack', '--image', layout, path.join(dir, 'bundle')]);
      return { ms: a.ms + b.ms, cpuS: a.cpuS + b.cpuS, rss: { skopeo: a.rssKiB, umoci: b.rssKiB }, parts: { skopeoMs: a.ms, umociMs: b.ms }, out: path.join(dir, 'bundle/rootfs') };
    },
  },
  floor: {
    label: 'floor (curl | tar -xz)',
    run(image, dir) {
      const [host, ...rest] = image.ref.split('/');
      const repo = rest.join('/').replace(/:[^:]*$/, '');
      const out = path.join(dir, 'rootfs');
      fs.mkdirSync(out);
      const script = ['set -euo pipefail', ...image.layers.map((l) => `curl -sSf http://${host}/v2/${repo}/blobs/${l.digest} | tar -xzf - -C ${out}`)].join('\n');
      const p = timed(['bash', '-c', script]);
      return { ms: p.ms, cpuS: p.cpuS, rss: { floor: p.rssKiB }, out };
    },
  },
};

/** Regular files and their bytes under `dir` (skipping berth's .tmp), to check every tool unpacked the same. */
function countTree(dir) {
  let files = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name === '.tmp' && d === dir) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        files++;
        bytes += fs.lstatSync(p).size;
      }
    }
  };
  walk(dir);
  return { files, bytes };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x) => Math.round(x * 1000) / 1000;
const stats = (xs) => ({ median: round(median(xs)), min: round(Math.min(...xs)), max: round(Math.max(...xs)), runs: xs.map(round) });

/** Room for the blobs twice (skopeo's layout, berth's store) and the unpacked tree, with margin. */
function fsBytes(image) {
  return image.compressed * 2 + (image.uncompressed ?? image.compressed * 3) * 1.5 + 512 * MiB;
}

async function benchImage(image, toolNames, runs, work, registry) {
  const samples = Object.fromEntries(toolNames.map((t) => [t, []]));
  const trees = {};
  for (let i = 0; i < runs; i++) {
    // Rotate the order each round so drift (thermal, noisy neighbours) does not favour one tool.
    const order = toolNames.map((_, k) => toolNames[(k + i) % toolNames.length]);
    for (const t of order) {
      const target = freshFs(work, `${image.name}-${t}-${i}`, fsBytes(image));
      coldCaches();
      const gate = waitQuiet();
      const busy0 = machineBusyS();
      const steal0 = machineStealS();
      const reg0 = processCpuS(registry.pid);
      const r = TOOLS[t].run(image, target.dir);
      const syncMs = timedSync();
      const registryCpuS = processCpuS(registry.pid) - reg0;
      const stealS = machineStealS() - steal0;
      // Whatever else ran meanwhile (others' builds, kernel threads): large values mark a disturbed run.
      const backgroundCpuS = Math.max(0, machineBusyS() - busy0 - r.cpuS - registryCpuS);
      if (i === 0) trees[t] = countTree(r.out);
      samples[t].push({ ...r, syncMs, totalMs: r.ms + syncMs, registryCpuS, backgroundCpuS, stealS, quietWaitS: gate.waitedS, quiet: gate.quiet });
      log(`${image.name} run ${i + 1}/${runs} ${t}: ${(r.ms / 1000).toFixed(2)} s + sync ${(syncMs / 1000).toFixed(2)} s, RSS ${Object.entries(r.rss).map(([k, v]) => `${k} ${(v / 1024).toFixed(0)} MiB`).join(', ')}; background CPU ${backgroundCpuS.toFixed(2)} s, steal ${stealS.toFixed(2)} s${gate.quiet ? '' : ' (machine was busy)'}`);
      if (!opt.keep) target.cleanup();
      // Runs are synchronous: yield so a SIGINT/SIGTERM handler gets its turn between them.
      await new Promise((resolve) => setImmediate(resolve));
      if (interrupted) throw new Error(`interrupted (${interrupted})`);
    }
  }
  const result = {};
  for (const t of toolNames) {
    const s = samples[t];
    const rssKeys = Object.keys(s[0].rss);
    result[t] = {
      label: TOOLS[t].label,
      totalMs: stats(s.map((x) => x.totalMs)),
      toolMs: stats(s.map((x) => x.ms)),
      syncMs: stats(s.map((x) => x.syncMs)),
      cpuS: stats(s.map((x) => x.cpuS)),
      registryCpuS: stats(s.map((x) => x.registryCpuS)),
      backgroundCpuS: stats(s.map((x) => x.backgroundCpuS)),
      stealS: stats(s.map((x) => x.stealS)),
      disturbedRuns: s.filter((x) => !x.quiet).length,
      peakRssMiB: Object.fromEntries(rssKeys.map((k) => [k, Math.max(...s.map((x) => x.rss[k])) / 1024])),
      ...(s[0].parts && { parts: Object.fromEntries(Object.keys(s[0].parts).map((k) => [k, stats(s.map((x) => x.parts[k]))])) }),
      tree: trees[t],
    };
  }
  return result;
}

/** What every berth command pays before it pulls anything: Node start and module loading (`berth --version`). */
function berthStartup(runs) {
  const s = [];
  for (let i = 0; i < runs; i++) {
    coldCaches();
    waitQuiet();
    s.push(timed(['node', berthMain, '--version']));
  }
  return { ms: stats(s.map((x) => x.ms)), peakRssMiB: Math.max(...s.map((x) => x.rssKiB)) / 1024 };
}

/** One berth pull under --cpu-prof, summarized by self time per function and per area. */
function profileBerth(image, work) {
  const target = freshFs(work, 'profile', fsBytes(image));
  const dir = target.dir;
  const profDir = path.join(repoRoot, '.cache/bench/profile');
  fs.mkdirSync(profDir, { recursive: true });
  for (const f of fs.readdirSync(profDir)) fs.rmSync(path.join(profDir, f));
  coldCaches();
  waitQuiet();
  const p = timed(['node', ...NODE_ARGS, '--cpu-prof', '--cpu-prof-dir', profDir, berthMain, '--root', path.join(dir, 'root'), 'pull', '-q', '--platform', 'linux/amd64', image.ref], { env: BERTH_ENV });
  target.cleanup();
  const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  const prof = JSON.parse(fs.readFileSync(path.join(profDir, file), 'utf8'));
  const self = new Map();
  const dt = new Map();
  prof.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const areaOf = (cf) => {
    const u = cf.url;
    if (cf.functionName === '(idle)') return 'idle (waiting: I/O, threadpool)';
    if (cf.functionName === '(garbage collector)') return 'GC';
    if (cf.functionName === '(program)') return 'native (program)';
    if (/tar-stream|b4a|streamx|fast-fifo|text-decoder/.test(u)) return 'tar-stream/streamx (JS)';
    if (/unpack\/apply/.test(u)) return 'berth apply.js (JS)';
    if (/node:(internal\/)?fs|node:fs/.test(u)) return 'node fs (JS glue)';
    if (/node:(internal\/)?(zlib|crypto)/.test(u) || /^(update|digest|writeSync|processChunk)/.test(cf.functionName)) return 'zlib/crypto (JS glue + sync native)';
    if (/undici|node:internal\/deps|node:(internal\/)?(http|net|stream_base)/.test(u)) return 'HTTP (undici/net)';
    if (/node:internal\/streams|node:stream/.test(u)) return 'node streams (JS)';
    if (/better-sqlite3|koffi/.test(u)) return 'sqlite/koffi';
    if (/dist\//.test(u)) return 'berth other (JS)';
    if (/^node:/.test(u)) return 'node internals (other)';
    if (u === '') return `native: ${cf.functionName || '(anonymous)'}`;
    return 'other';
  };
  const byArea = new Map();
  let total = 0;
  for (const n of prof.nodes) {
    const t = dt.get(n.id) ?? 0;
    if (!t) continue;
    total += t;
    const cf = n.callFrame;
    const key = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + t);
    const a = areaOf(cf);
    byArea.set(a, (byArea.get(a) ?? 0) + t);
  }
  const top = (m, n) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => ({ what: k, ms: +(v / 1000).toFixed(1), pct: +((100 * v) / total).toFixed(1) }));
  return { image: image.name, wallMs: p.ms, cpuS: p.cpuS, profileMs: total / 1000, file: path.join(profDir, file), byArea: top(byArea, 20), topFunctions: top(self, 25) };
}

// ---------------------------------------------------------------------------------------------------
// Report

const sec = (ms) => (ms / 1000).toFixed(2);
const spread = (s) => `${sec(s.min)}–${sec(s.max)}`;

function printTable(facts, results, startup) {
  const lines = [];
  const p = (s = '') => lines.push(s);
  p(`machine: ${facts.nproc} × ${facts.cpuModel}, ${facts.memTotalMiB} MiB, kernel ${facts.kernel}, ${facts.os}, Node ${facts.node}, ${facts.filesystem}`);
  p(`tools: skopeo ${facts.tools.skopeo}, umoci ${facts.tools.umoci}, ${facts.tools.curl}, tar ${facts.tools.tar}, docker-registry ${facts.tools.registry}; berth ${facts.berth.commit}${facts.berth.dirty ? ' (dirty)' : ''}`);
  p(`caches dropped before each run: ${facts.dropCaches ? 'yes' : 'no'}; output on ${facts.fsMode === 'loop' ? 'a fresh ext4 (loop device) per run' : `a directory on ${facts.filesystem}`}; time = tool + a final sync (berth syncs itself; the others leave dirty pages)`);
  p('bg CPU = CPU seconds used by other processes during a run (median), besides the tool and the registry');
  if (startup) p(`berth --version (Node start + module loading): median ${sec(startup.ms.median)} s (${spread(startup.ms)}), peak RSS ${startup.peakRssMiB.toFixed(0)} MiB`);
  for (const r of results) {
    const img = r.image;
    p();
    p(`${img.name}: ${img.layers.length} layers, ${(img.compressed / MiB).toFixed(1)} MiB compressed${img.uncompressed ? `, ${(img.uncompressed / MiB).toFixed(1)} MiB uncompressed` : ''} (${img.note}); ${r.runs} runs`);
    p('| tool | median s | min–max s | tool only s | sync s | CPU s | peak RSS MiB | files | vs skopeo+umoci | vs floor | bg CPU s |');
    p('| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |');
    for (const [t, x] of Object.entries(r.tools)) {
      const vs = (o) => (r.tools[o] ? `${(x.totalMs.median / r.tools[o].totalMs.median).toFixed(2)}×` : '–');
      const rss = Object.entries(x.peakRssMiB).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');
      p(`| ${x.label.replace(/\|/g, '\\|')} | ${sec(x.totalMs.median)} | ${spread(x.totalMs)} | ${sec(x.toolMs.median)} | ${sec(x.syncMs.median)} | ${x.cpuS.median.toFixed(2)} | ${rss} | ${x.tree.files} | ${vs('skopeo')} | ${vs('floor')} | ${x.backgroundCpuS.median.toFixed(2)}${x.disturbedRuns ? ` (${x.disturbedRuns} busy)` : ''} |`);
    }
    if (r.tools.skopeo?.parts) p(`skopeo copy ${sec(r.tools.skopeo.parts.skopeoMs.median)} s + umoci unpack ${sec(r.tools.skopeo.parts.umociMs.median)} s (medians)`);
  }
  console.log(lines.join('\n'));
}

// ---------------------------------------------------------------------------------------------------
// Main

const { startRegistry } = await import('../../test/helpers/services/registry.ts');
const facts = machineFacts();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-'));
const registry = await startRegistry({ deleteEnabled: false });
registry.pid = registryPid(registry);
const started = Date.now();
const cleanupAll = () => {
  for (const t of liveFs) {
    try {
      t.cleanup();
    } catch (err) {
      log(`cleanup of ${t.dir} failed: ${err.message}`);
    }
  }
};
if (!opt.serve) {
  // Stop between runs and leave through the finally below, which unmounts and stops the registry.
  // vite-node's server would exit on SIGTERM at once, leaving loop mounts behind: take that over.
  process.removeAllListeners('SIGTERM');
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      log(`${sig}: stopping after this run`);
      interrupted = sig;
    });
  }
}
const out = { command: `node scripts/bench/pull.mjs ${process.argv.slice(2).join(' ')}`.trim(), facts, results: [], profile: undefined };
try {
  const images = await buildImages(registry);
  if (opt.serve) {
    // For profiling by hand: keep the registry up with the images until Ctrl-C.
    console.log(JSON.stringify({ registry: registry.host, images: images.map((i) => ({ name: i.name, ref: i.ref, layers: i.layers })) }, null, 2));
    log('serving; Ctrl-C to stop');
    await new Promise((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
  for (const image of opt.serve ? [] : images) {
    const big = image.name === 'big';
    const tools = big ? TOOL_NAMES.filter((t) => t === 'berth') : TOOL_NAMES;
    if (tools.length === 0) continue;
    const runs = big ? BIG_RUNS : RUNS;
    log(`${image.name}: ${image.layers.length} layers, ${(image.compressed / MiB).toFixed(1)} MiB compressed; ${runs} runs of ${tools.join(', ')}`);
    out.results.push({ image, runs, tools: await benchImage(image, tools, runs, work, registry) });
  }
  if (!opt.serve) out.berthStartup = berthStartup(RUNS);
  out.facts.dropCaches = dropCaches;
  out.facts.fsMode = fsMode;
  if (opt.profile && images.length > 0 && !opt.serve) {
    log(`profiling one berth pull of ${images[0].name}`);
    out.profile = profileBerth(images[0], work);
  }
} catch (err) {
  if (!interrupted) throw err;
} finally {
  cleanupAll();
  await registry.stop();
  if (!opt.keep) fs.rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}
if (opt.serve) process.exit(0);
if (interrupted) process.exit(130);
out.elapsedS = Math.round((Date.now() - started) / 1000);

printTable(facts, out.results, out.berthStartup);
if (out.profile) {
  console.log(`\nberth --cpu-prof of ${out.profile.image}: wall ${sec(out.profile.wallMs)} s, CPU ${out.profile.cpuS.toFixed(2)} s, main thread profile ${sec(out.profile.profileMs)} s (${out.profile.file})`);
  console.log('self time by area:');
  for (const a of out.profile.byArea) console.log(`  ${String(a.ms).padStart(8)} ms ${String(a.pct).padStart(5)} %  ${a.what}`);
  console.log('top functions (self time):');
  for (const a of out.profile.topFunctions.slice(0, 15)) console.log(`  ${String(a.ms).padStart(8)} ms ${String(a.pct).padStart(5)} %  ${a.what}`);
}
const dir = path.join(repoRoot, '.cache/bench');
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, `pull-${facts.date.replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
fs.copyFileSync(file, path.join(dir, 'pull-latest.json'));
console.log(`\nresults: ${path.relative(repoRoot, file)} (${out.elapsedS} s)`);
