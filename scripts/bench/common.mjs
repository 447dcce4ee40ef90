// What every benchmark script does first: check for root, install what it needs (scripts/setup.sh, then
// its own Debian packages, apt-get update only when something is missing), and re-run itself under
// vite-node so it can import the TypeScript test helpers (registry, image builder).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

function installed(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === 'install ok installed';
}

function ensurePackages(packages, rootReason) {
  if (process.getuid?.() !== 0) {
    console.error(`bench: run as root (${rootReason})`);
    process.exit(1);
  }
  const setup = spawnSync('bash', [path.join(repoRoot, 'scripts/setup.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (setup.status !== 0) {
    console.error('bench: scripts/setup.sh failed');
    process.exit(1);
  }
  const missing = packages.filter((p) => !installed(p));
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')}`);
  // A flaky index elsewhere (a mirror mid-sync) need not stop this: the install decides.
  const upd = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  if (upd.status !== 0) log('apt-get update reported errors; trying the install anyway');
  const inst = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const still = missing.filter((p) => !installed(p));
  if (inst.status !== 0 || still.length > 0) {
    console.error(`bench: could not install ${still.join(' ') || missing.join(' ')}`);
    process.exit(1);
  }
}

/**
 * Returns when running under vite-node. Otherwise installs what the benchmark needs, runs `script` again
 * under vite-node with the same arguments, and exits with its status.
 */
export function prepareBench(script, { packages, rootReason }) {
  if (process.env.BERTH_BENCH_UNDER_VITE_NODE) return;
  ensurePackages(packages, rootReason);
  const viteNode = path.join(repoRoot, 'node_modules/.bin/vite-node');
  const res = spawnSync(viteNode, ['--script', script, ...process.argv.slice(2)], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, BERTH_BENCH_UNDER_VITE_NODE: '1' },
  });
  if (res.error) {
    console.error(`bench: cannot run ${viteNode} (${res.error.message}); run \`npm ci\` first`);
    process.exit(1);
  }
  process.exit(res.status ?? 1);
}

/** A command's trimmed stdout, or undefined when it is missing or fails (for machine facts). */
export function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Teardown for a benchmark: push a step per thing set up; `run` undoes them newest first, logs a failing
 * step and goes on, then calls `finish` (e.g. removing the work dir). Ctrl-C runs it before exiting, and
 * running it again does nothing more than `finish`.
 */
export function teardown(finish) {
  const steps = [];
  const run = async () => {
    while (steps.length > 0) {
      try {
        await steps.pop()();
      } catch (err) {
        log(`cleanup: ${String(err.message).split('\n')[0]}`);
      }
    }
    finish?.();
  };
  process.on('SIGINT', () => void run().then(() => process.exit(130)));
  return { steps, run };
}

/** Exits with a clear message unless `berthDir` has been built (the benches run its bin/berth). */
export function requireBuiltBerth(berthDir) {
  if (fs.existsSync(path.join(berthDir, 'dist/bundle/berth.mjs'))) return;
  console.error(`bench: ${berthDir}/dist/bundle/berth.mjs missing; run \`npm run build\` there`);
  process.exit(1);
}

let clkTck;
/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid) {
  clkTck ??= Number(sh('getconf', ['CLK_TCK']) ?? 100);
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / clkTck;
}

/** A `kB` field of /proc/PID/status (VmRSS, VmHWM …) in KiB; NaN when the process has none (a zombie). */
export function statusKiB(pid, field) {
  return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1]);
}
