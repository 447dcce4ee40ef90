#!/usr/bin/env node
// Telemetry sample cost: CPU time (process.cpuUsage, user + system) and wall time per
// TelemetrySampler.sample(), against the ≤ 5 ms CPU budget per sample.
//
//   node scripts/bench/telemetry.mjs [--samples 300] [--containers 5] [--interval-ms 10]
//
// Needs root and `npm run build` (it samples with the compiled dist/, as the agent runs it). Starts a
// private registry, pulls the busybox test image and runs --containers `sleep` containers with bin/berth,
// then measures three cases, each after 20 warm-up samples:
//   host:       the host alone (no services);
//   services:   the host and the running containers, read through the engine's cgroupDir, as on this
//               host's cgroup layout (a hybrid host has only cpu.stat in the unified hierarchy);
//   full-v2:    the host and the same number of services on a synthetic cgroup v2 tree with every file the
//               sampler reads (tmpfs files, not cgroupfs: the same syscalls, cheaper text generation), for
//               the file count a unified board reads.
// Prints a Markdown table and writes .cache/bench/telemetry-latest.json. It never writes BENCHMARKS.md.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { log, prepareBench, repoRoot } from './common.mjs';

const self = fileURLToPath(import.meta.url);
prepareBench(self, { packages: ['runc'], rootReason: 'runs containers' });

const { values: opt } = parseArgs({
  options: {
    samples: { type: 'string', default: '300' },
    containers: { type: 'string', default: '5' },
    'interval-ms': { type: 'string', default: '10' },
  },
});
const SAMPLES = Number(opt.samples);
const CONTAINERS = Number(opt.containers);
const INTERVAL = Number(opt['interval-ms']);
const WARMUP = 20;

const bin = path.join(repoRoot, 'bin/berth');
for (const f of ['dist/agent/telemetry/index.js', 'dist/bundle/berth.mjs']) {
  if (!fs.existsSync(path.join(repoRoot, f))) {
    console.error(`bench: ${f} missing; run \`npm run build\``);
    process.exit(1);
  }
}
const dist = (p) => import(pathToFileURL(path.join(repoRoot, 'dist', p)).href);
const { TelemetrySampler } = await dist('agent/telemetry/index.js');
const { detectBoard } = await dist('board/index.js');
const { hostPaths } = await dist('host/paths.js');
const { BerthRoot } = await dist('root.js');
const { startRegistry } = await import(pathToFileURL(path.join(repoRoot, 'test/helpers/services/registry.ts')).href);
const { pushBusyboxImage } = await import(pathToFileURL(path.join(repoRoot, 'test/helpers/images/build.ts')).href);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-telemetry-'));
const fakeCgroups = fs.mkdtempSync('/dev/shm/berth-bench-cgroup-');
const berth = (...args) => spawnSync(bin, ['--root', root, ...args], { encoding: 'utf8', env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' } });
const registry = await startRegistry();
const results = {};
try {
  await pushBusyboxImage(registry, 'bench/busybox', 'v1', { arches: ['amd64'] });
  const img = `${registry.host}/bench/busybox:v1`;
  if (berth('pull', '-q', img).status !== 0) throw new Error('pull failed');
  for (let i = 0; i < CONTAINERS; i++) {
    const r = berth('run', '-d', '--name', `bench-${i}`, img, 'sleep', '3600');
    if (r.status !== 0) throw new Error(`run failed: ${r.stderr}`);
  }
  const host = hostPaths('/');
  const parts = new BerthRoot({ root, host, env: { PATH: process.env.PATH }, version: 'bench', board: detectBoard(host) });
  const engine = await parts.engine();
  const running = engine.list().filter((c) => c.state === 'running').map((container) => ({ service: container.name, container }));
  parts.close();
  log(`${running.length} running containers; cgroup root ${engine.cgroupRoot}`);

  // A complete cgroup v2 directory per container, as on a unified board.
  const fakeEngine = { cgroupDir: (id) => path.join(fakeCgroups, id) };
  for (const { container } of running) {
    const d = fakeEngine.cgroupDir(container.id);
    fs.mkdirSync(d);
    const files = {
      'cgroup.procs': '42\n', 'cpu.stat': 'usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n',
      'memory.current': '7340032\n', 'memory.peak': '9437184\n', 'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
      'pids.current': '1\n', 'cgroup.events': 'populated 1\nfrozen 0\n',
    };
    for (const [f, t] of Object.entries(files)) fs.writeFileSync(path.join(d, f), t);
  }

  const cases = [
    ['host', engine, []],
    ['services', engine, running],
    ['full-v2', fakeEngine, running],
  ];
  for (const [name, eng, services] of cases) {
    const sampler = new TelemetrySampler({ host, stateRoot: root, engine: eng });
    const cpu = [];
    const wall = [];
    let last;
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const t0 = performance.now();
      last = sampler.sample(services);
      const t1 = performance.now();
      if (i >= WARMUP) {
        cpu.push(sampler.lastSampleCpuUs());
        wall.push((t1 - t0) * 1000);
      }
      await sleep(INTERVAL);
    }
    results[name] = {
      services: services.length,
      measured: Object.values(last.services).filter((s) => s.measured).length,
      cpuUs: { median: pct(cpu, 50), p95: pct(cpu, 95), max: Math.max(...cpu) },
      wallUs: { median: Math.round(pct(wall, 50)), p95: Math.round(pct(wall, 95)) },
      jsonBytes: JSON.stringify(last).length,
    };
    log(`${name}: ${JSON.stringify(results[name])}`);
  }
} finally {
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]');
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await registry.stop();
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(fakeCgroups, { recursive: true, force: true });
}

const machine = `${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, Node ${process.version}, Linux ${os.release()}`;
const out = { date: new Date().toISOString(), machine, samples: SAMPLES, intervalMs: INTERVAL, budgetUs: 5000, results };
fs.mkdirSync(path.join(repoRoot, '.cache/bench'), { recursive: true });
fs.writeFileSync(path.join(repoRoot, '.cache/bench/telemetry-latest.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(`Machine: ${machine}; ${SAMPLES} samples per case, ${INTERVAL} ms apart, after ${WARMUP} warm-up samples.\n`);
console.log('| case | services (measured) | CPU µs median | CPU µs p95 | CPU µs max | wall µs median | wall µs p95 | JSON bytes |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [name, r] of Object.entries(results)) {
  console.log(`| ${name} | ${r.services} (${r.measured}) | ${r.cpuUs.median} | ${r.cpuUs.p95} | ${r.cpuUs.max} | ${r.wallUs.median} | ${r.wallUs.p95} | ${r.jsonBytes} |`);
}
