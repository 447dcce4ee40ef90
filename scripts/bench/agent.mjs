#!/usr/bin/env node
// Fleet agent benchmark: one `berth agent` against a real mosquitto, driven by a fleet-side MQTT client
// the way test/integration/mqtt-agent.test.ts drives it.
//
//   node scripts/bench/agent.mjs [--deploys 20] [--warmup 2] [--pull-deploys 0] [--idle 60] [--samples 30] [--berth DIR]
//
// Measures
//   (a) deploy latency of a cached image: publish of a retained desired state → the retained `reported`
//       {status: applied} for that revision, over --deploys deploys that alternate between two specs of
//       one service, so every deploy stops and replaces a container (and removes the old one, which
//       happens before `applied`). Run twice: with update.health_window 100ms (a small window, as a
//       fleet would set it) and 0s (no window: the floor). The progress messages split each deploy:
//       publish → `await-healthy` (the new container is running) is the part before the health window.
//   (a2) with --pull-deploys N: N deploys of an image not on the device, alternating between two images
//       of busybox plus one layer of ~70 MiB of this machine's files (perl, i18n, zoneinfo: thousands
//       of small files, gzip -6), each with its own path prefix, so they share no big layer and each
//       deploy prunes the other (the deployer removes an image its last container leaves): every one
//       pulls that layer. Per deploy: publish → applied, the pull step (progress `pull` → `create`), the
//       agent's CPU and its waited-for children's (a pull in a child process counts there; so do the
//       runtime's), and the agent's VmRSS 3 s after `applied` (has the pull's memory left it?).
//   (b) the agent's idle RSS (VmRSS sampled each second, VmHWM at the end, from /proc/<pid>/status) and
//       CPU (utime + stime from /proc/<pid>/stat) over --idle seconds with 5 running services and
//       telemetry at 30 s (the default for non-SD storage).
//   (c) the cost of one telemetry sample with those 5 services: `sampleCpuUs` of --samples telemetry
//       messages at a 1 s interval.
//
// Needs root and `npm ci && npm run build`. Installs what it needs when missing (scripts/setup.sh:
// mosquitto, docker-registry, busybox .debs). Prints Markdown on stdout and writes
// .cache/bench/agent-<timestamp>.json (and agent-latest.json). It never writes BENCHMARKS.md. Like the
// other benchmarks it re-runs itself under vite-node to import the TypeScript test helpers.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { log, prepareBench, repoRoot, sh, teardown } from './common.mjs';

const self = fileURLToPath(import.meta.url);
prepareBench(self, { packages: ['mosquitto'], rootReason: 'containers, cgroups, mounts' });

const { values: opt } = parseArgs({
  options: {
    deploys: { type: 'string', default: '20' },
    'pull-deploys': { type: 'string', default: '0' },
    warmup: { type: 'string', default: '2' },
    idle: { type: 'string', default: '60' },
    samples: { type: 'string', default: '30' },
    berth: { type: 'string', default: repoRoot },
  },
});
const DEPLOYS = Number(opt.deploys);
const PULL_DEPLOYS = Number(opt['pull-deploys']);
const WARMUP = Number(opt.warmup);
const IDLE_S = Number(opt.idle);
const SAMPLES = Number(opt.samples);
const berthDir = path.resolve(opt.berth);
const berthBin = path.join(berthDir, 'bin/berth');
if (!fs.existsSync(path.join(berthDir, 'dist/bundle/berth.mjs'))) {
  console.error(`bench: ${berthDir}/dist/bundle/berth.mjs missing; run \`npm run build\` there`);
  process.exit(1);
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  return s[Math.floor(i)] + (s[Math.ceil(i)] - s[Math.floor(i)]) * (i - Math.floor(i));
};
const stats = (xs) => ({ n: xs.length, p50: quantile(xs, 0.5), p95: quantile(xs, 0.95), min: Math.min(...xs), max: Math.max(...xs) });
const r1 = (n) => Math.round(n * 10) / 10;
const CLK_TCK = Number(sh('getconf', ['CLK_TCK']) ?? 100);
/** The floor: VmRSS of a bare `node` with the agent's flags, idling, measured beside the agent. */
async function bareNodeRssKiB() {
  const p = spawn(process.execPath, ['--max-semi-space-size=1', '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await sleep(3000);
  const kib = statusKiB(p.pid, 'VmRSS');
  p.kill();
  return kib;
}
const statusKiB = (pid, field) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1]);
const statFields = (pid) => {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
};
const cpuTicks = (pid) => {
  const f = statFields(pid);
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
};
/** CPU of the waited-for children (cutime + cstime, fields 16 and 17): a pull child, the runtime. */
const childCpuTicks = (pid) => {
  const f = statFields(pid);
  return Number(f[13]) + Number(f[14]);
};
/** An uncompressed tar of files of this machine under `prefix/` (thousands of small files: the tar parsing a real image costs). */
const hostFilesTar = (prefix) => spawnSync('tar', ['-C', '/', '-cf', '-', '--owner=0', '--group=0', '--numeric-owner', `--transform=s,^,${prefix}/,S`, 'usr/share/perl', 'usr/share/i18n', 'usr/share/zoneinfo', `usr/lib/${sh('gcc', ['-print-multiarch']) || 'x86_64-linux-gnu'}/perl`], { maxBuffer: 1 << 30 }).stdout;
const machineBusyTicks = () => {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0] + f[1] + f[2] + f[5] + f[6] + f[7], total: f.reduce((a, b) => a + b, 0) };
};

const facts = {
  date: new Date().toISOString(),
  nproc: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
  kernel: os.release(),
  node: process.version,
  loadavgAtStart: os.loadavg().map(r1),
  mosquitto: (sh('mosquitto', ['-h']) ?? '').split('\n')[0],
  berth: { dir: berthDir, commit: sh('git', ['-C', berthDir, 'rev-parse', '--short', 'HEAD']) ?? 'unknown' },
};

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-agent-'));
const root = path.join(work, 'root');
const DEVICE = 'bench-1';
const base = `berth/v1/${DEVICE}`;
const { steps: cleanups, run: cleanup } = teardown(() => fs.rmSync(work, { recursive: true, force: true }));

const berth = (...args) => spawnSync(berthBin, ['--root', root, ...args], { encoding: 'utf8' });
const results = { facts, deploys: {}, pullDeploys: undefined, idle: undefined, telemetry: undefined };

try {
  const { default: mqtt } = await import('mqtt');
  const { startMosquitto } = await import('../../test/helpers/services/mosquitto.ts');
  // The fleet key the agent trusts and the bench signs with, as a real fleet would (test/helpers/signing.ts).
  const { testFleetKey } = await import('../../test/helpers/signing.ts');
  const fleetKey = testFleetKey();
  const { startRegistry } = await import('../../test/helpers/services/registry.ts');
  const { pushBusyboxImage } = await import('../../test/helpers/images/build.ts');
  const { hostTestArch } = await import('../../test/helpers/bundle.ts');

  log('starting mosquitto and a registry, pushing the busybox image');
  const [broker, registry] = await Promise.all([startMosquitto(), startRegistry()]);
  cleanups.push(() => registry.stop(), () => broker.stop());
  await pushBusyboxImage(registry, 'bench/app', 'v1', { arches: [hostTestArch()] });
  const img = `${registry.host}/bench/app:v1`;
  const pulled = berth('pull', '-q', img);
  if (pulled.status !== 0) throw new Error(`berth pull: ${pulled.stderr}`);

  // The fleet side: every message under the device's subtree, with its arrival time.
  const inbox = [];
  const fleet = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'bench-fleet' });
  cleanups.push(() => fleet.endAsync());
  fleet.on('message', (topic, payload) => {
    let p;
    try {
      p = JSON.parse(payload.toString());
    } catch {
      p = payload.toString();
    }
    inbox.push({ topic: topic.slice(base.length + 1), payload: p, at: performance.now() });
  });
  await fleet.subscribeAsync(`${base}/#`, { qos: 1 });
  const until = async (fn, ms, what) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
      await sleep(2);
    }
  };
  const since = (t) => inbox.filter((m) => m.at >= t);
  const ask = async (id, cmd) => {
    const t = performance.now();
    await fleet.publishAsync(`${base}/cmd/${id}`, fleetKey.command(DEVICE, id, cmd), { qos: 1 });
    const r = await until(() => since(t).find((m) => m.topic === `cmd/${id}/result`), 20_000, `result of ${id}`);
    if (r.payload.status !== 'ok') throw new Error(`${id}: ${JSON.stringify(r.payload)}`);
    return r.payload;
  };

  log('starting berth agent');
  const agentProc = spawn(berthBin, ['--root', root, 'agent', '--config', fleetKey.agentConfig(work), '--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '1s', '--no-governor'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const agentLog = [];
  let buf = '';
  agentProc.stdout.on('data', (d) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const l of parts) agentLog.push(l);
  });
  cleanups.push(async () => {
    if (agentProc.exitCode === null) {
      const exited = new Promise((r) => agentProc.once('exit', r));
      agentProc.kill('SIGTERM');
      await exited;
    }
    const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]');
    if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  });
  const pid = agentProc.pid; // bin/berth execs node: the same process
  await until(() => inbox.find((m) => m.topic === 'status' && m.payload.online === true), 30_000, 'agent online');

  // `sh` as PID 1 with a TERM trap exits at once on stop (a bare `sleep` ignores SIGTERM and would
  // make every replacement wait out the grace period).
  const service = (variant) => ({ image: img, command: ['sh', '-c', `trap 'exit 0' TERM; sleep ${3600 + variant} & wait`], stop_grace_period: '2s' });
  let revision = 0;
  async function deploy(services, healthWindow) {
    revision += 1;
    const rev = revision;
    const cpu0 = cpuTicks(pid);
    const t0 = performance.now();
    await fleet.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, { revision: rev, services, update: { health_window: healthWindow } }), { qos: 1, retain: true });
    const done = await until(() => since(t0).find((m) => m.topic === 'reported' && m.payload.revision === rev && m.payload.status !== 'applying'), 60_000, `revision ${rev}`);
    if (done.payload.status !== 'applied') throw new Error(`revision ${rev}: ${done.payload.status} ${JSON.stringify(done.payload.error)}`);
    const progress = since(t0).filter((m) => m.topic === 'progress' && m.payload.revision === rev);
    const phase = (p) => progress.find((m) => m.payload.phase === p)?.at;
    const at = (t) => (t === undefined ? undefined : t - t0);
    return {
      revision: rev,
      appliedMs: done.at - t0,
      // The agent's own CPU over the deploy (10 ms ticks): what a slower interpreter (lite mode) costs, whatever the load.
      agentCpuMs: ((cpuTicks(pid) - cpu0) * 1000) / CLK_TCK,
      applyingMs: at(since(t0).find((m) => m.topic === 'reported' && m.payload.revision === rev && m.payload.status === 'applying')?.at),
      runningMs: at(phase('await-healthy')),
      removeMs: at(phase('remove')),
      phases: progress.map((m) => `${m.payload.phase}${m.payload.service ? ` ${m.payload.service}` : ''}@${r1(m.at - t0)}`),
    };
  }

  // (a) deploys
  for (const window of ['100ms', '0s']) {
    const runs = [];
    for (let i = 0; i < WARMUP + DEPLOYS; i++) {
      const r = await deploy({ app: service(i % 2) }, window);
      if (i >= WARMUP) runs.push(r);
    }
    const field = (k) => runs.map((r) => r[k]).filter((v) => v !== undefined);
    results.deploys[window] = {
      runs,
      applied: stats(field('appliedMs')),
      running: stats(field('runningMs')),
      applying: stats(field('applyingMs')),
      healthWindowAndRemove: stats(runs.filter((r) => r.runningMs !== undefined).map((r) => r.appliedMs - r.runningMs)),
      agentCpu: stats(field('agentCpuMs')),
    };
    const d = results.deploys[window];
    log(`health_window ${window}: applied p50 ${r1(d.applied.p50)} ms p95 ${r1(d.applied.p95)} ms; running p50 ${r1(d.running.p50)} ms`);
  }
  const ps = JSON.parse(berth('ps', '-a', '--json').stdout);
  results.containersAfterDeploys = ps.length;

  // (a2) deploys that pull
  if (PULL_DEPLOYS > 0) {
    log('building two images with a layer of this machine\'s files each (gzip -6, takes a while)');
    const pullImgs = [];
    for (const name of ['pulla', 'pullb']) {
      await pushBusyboxImage(registry, `bench/${name}`, 'v1', { arches: [hostTestArch()], index: false, extraLayers: [hostFilesTar(name)] });
      pullImgs.push(`${registry.host}/bench/${name}:v1`);
    }
    const runs = [];
    for (let i = 0; i < PULL_DEPLOYS; i++) {
      spawnSync('sync');
      const [c0, k0] = [cpuTicks(pid), childCpuTicks(pid)];
      const r = await deploy({ app: { ...service(100 + i), image: pullImgs[i % 2] } }, '0s');
      const [c1, k1] = [cpuTicks(pid), childCpuTicks(pid)];
      const pullStep = r.phases.find((p) => p.startsWith('pull'));
      const createStep = r.phases.find((p) => p.startsWith('create'));
      const at = (p) => Number(p?.split('@')[1]);
      await sleep(3000);
      runs.push({
        ...r, pullMs: at(createStep) - at(pullStep), agentCpuS: (c1 - c0) / CLK_TCK, childrenCpuS: (k1 - k0) / CLK_TCK,
        rssAfterKiB: statusKiB(pid, 'VmRSS'), images: JSON.parse(berth('images', '--json').stdout).length,
      });
      const x = runs.at(-1);
      log(`pull deploy ${i + 1}: applied ${r1(x.appliedMs)} ms, pull step ${r1(x.pullMs)} ms, CPU agent ${x.agentCpuS} s + children ${x.childrenCpuS} s, VmRSS after ${r1(x.rssAfterKiB / 1024)} MiB (load ${os.loadavg()[0].toFixed(1)})`);
    }
    const field = (k) => runs.map((r) => r[k]);
    results.pullDeploys = {
      runs, applied: stats(field('appliedMs')), pull: stats(field('pullMs')), agentCpuS: stats(field('agentCpuS')), childrenCpuS: stats(field('childrenCpuS')),
      rssAfterKiB: stats(field('rssAfterKiB')), vmHwmKiB: statusKiB(pid, 'VmHWM'),
    };
  }

  // (b) idle with 5 services, telemetry at 30 s
  await deploy(Object.fromEntries([1, 2, 3, 4, 5].map((n) => [`svc${n}`, service(10 + n)])), '0s');
  await ask('idle-interval', { action: 'set-telemetry-interval', interval: '30s' });
  await sleep(5000);
  const rss = [];
  const c0 = cpuTicks(pid);
  const m0 = machineBusyTicks();
  const w0 = performance.now();
  for (let s = 0; s < IDLE_S; s++) {
    rss.push(statusKiB(pid, 'VmRSS'));
    await sleep(1000);
  }
  const cpuS = (cpuTicks(pid) - c0) / CLK_TCK;
  const wallS = (performance.now() - w0) / 1000;
  const m1 = machineBusyTicks();
  results.idle = {
    seconds: r1(wallS),
    services: 5,
    telemetryIntervalS: 30,
    vmRssKiB: { ...stats(rss), last: rss.at(-1) },
    vmHwmKiB: statusKiB(pid, 'VmHWM'),
    // Anonymous memory is what the agent really takes from the containers' budget; file pages (node's
    // own binary, mostly) are clean and shared, and the kernel reclaims them under pressure.
    rssAnonKiB: statusKiB(pid, 'RssAnon'),
    rssFileKiB: statusKiB(pid, 'RssFile'),
    bareNodeVmRssKiB: await bareNodeRssKiB(),
    cpuSeconds: cpuS,
    cpuPercentOfOneCore: r1((100 * cpuS) / wallS),
    machineBusyPercent: r1((100 * (m1.busy - m0.busy)) / (m1.total - m0.total)),
  };
  log(`idle: VmRSS p50 ${r1(results.idle.vmRssKiB.p50 / 1024)} MiB (anon ${r1(results.idle.rssAnonKiB / 1024)}, file ${r1(results.idle.rssFileKiB / 1024)}; bare node ${r1(results.idle.bareNodeVmRssKiB / 1024)}), VmHWM ${r1(results.idle.vmHwmKiB / 1024)} MiB, CPU ${results.idle.cpuPercentOfOneCore} %`);

  // (c) telemetry sample cost with the same 5 services
  const t1 = performance.now();
  await ask('fast-interval', { action: 'set-telemetry-interval', interval: '1s' });
  const tel = await until(() => {
    const t = since(t1).filter((m) => m.topic === 'telemetry' && m.payload.sampleCpuUs !== undefined && Object.keys(m.payload.services ?? {}).length === 5);
    return t.length >= SAMPLES ? t : undefined;
  }, SAMPLES * 1000 + 60_000, `${SAMPLES} telemetry samples`);
  const costs = tel.map((m) => m.payload.sampleCpuUs);
  const bytes = tel.map((m) => JSON.stringify(m.payload).length);
  results.telemetry = { services: 5, sampleCpuUs: stats(costs), messageBytes: stats(bytes) };
  log(`telemetry: sampleCpuUs p50 ${results.telemetry.sampleCpuUs.p50} µs`);
  results.facts.loadavgAtEnd = os.loadavg().map(r1);
  results.agentLogLines = agentLog.length;
} catch (err) {
  log(`failed: ${err.stack ?? err}`);
  await cleanup();
  process.exit(1);
}
await cleanup();

// ---------------------------------------------------------------------------------------------------
// Report

const outDir = path.join(repoRoot, '.cache/bench');
fs.mkdirSync(outDir, { recursive: true });
const json = JSON.stringify(results, null, 2);
fs.writeFileSync(path.join(outDir, `agent-${Date.now()}.json`), json);
fs.writeFileSync(path.join(outDir, 'agent-latest.json'), json);

const f = results.facts;
const out = [];
out.push(`Machine: ${f.nproc} × ${f.cpuModel}, ${f.memTotalMiB} MiB, Linux ${f.kernel}, Node ${f.node}; load average ${f.loadavgAtStart.join(' ')} at start, ${f.loadavgAtEnd.join(' ')} at the end; berth ${f.berth.commit}`);
out.push('');
out.push('| deploy of a cached image (one service replaced) | n | p50 ms | p95 ms | min–max ms |');
out.push('| --- | --- | --- | --- | --- |');
for (const [w, d] of Object.entries(results.deploys)) {
  const row = (what, s) => out.push(`| ${what} | ${s.n} | ${r1(s.p50)} | ${r1(s.p95)} | ${r1(s.min)}–${r1(s.max)} |`);
  row(`health_window ${w}: publish → reported applied`, d.applied);
  row(`health_window ${w}: publish → new container running (progress await-healthy)`, d.running);
  row(`health_window ${w}: running → applied (health window, old container removed)`, d.healthWindowAndRemove);
  if (d.agentCpu) row(`health_window ${w}: the agent's CPU per deploy (ms)`, d.agentCpu);
}
const pd = results.pullDeploys;
if (pd) {
  out.push('');
  out.push(`| deploy of an image not on the device (busybox + ~70 MiB of small files), n ${pd.runs.length} | p50 | min–max |`);
  out.push('| --- | --- | --- |');
  const prow = (what, s, f = r1) => out.push(`| ${what} | ${f(s.p50)} | ${f(s.min)}–${f(s.max)} |`);
  prow('publish → reported applied, ms', pd.applied);
  prow('pull step (progress pull → create), ms', pd.pull);
  prow('agent CPU, s', pd.agentCpuS, (n) => n.toFixed(2));
  prow('children CPU (pull child, runtime), s', pd.childrenCpuS, (n) => n.toFixed(2));
  prow('agent VmRSS 3 s after applied, MiB', pd.rssAfterKiB, (n) => r1(n / 1024));
  out.push(`| agent VmHWM after the pull deploys | ${r1(pd.vmHwmKiB / 1024)} MiB | |`);
}
const i = results.idle;
out.push('');
out.push(`| agent idle, ${i.services} services, telemetry every ${i.telemetryIntervalS} s, ${i.seconds} s | value |`);
out.push('| --- | --- |');
out.push(`| VmRSS p50 (min–max) | ${r1(i.vmRssKiB.p50 / 1024)} MiB (${r1(i.vmRssKiB.min / 1024)}–${r1(i.vmRssKiB.max / 1024)}) |`);
out.push(`| of which anonymous / file-backed | ${r1(i.rssAnonKiB / 1024)} / ${r1(i.rssFileKiB / 1024)} MiB |`);
out.push(`| bare \`node\` beside it (same flags, idle) | ${r1(i.bareNodeVmRssKiB / 1024)} MiB (agent = ${r1(i.vmRssKiB.p50 / i.bareNodeVmRssKiB)}×) |`);
out.push(`| VmHWM (peak since start, deploys included) | ${r1(i.vmHwmKiB / 1024)} MiB |`);
out.push(`| CPU (utime + stime) | ${r1(i.cpuSeconds)} s = ${i.cpuPercentOfOneCore} % of one core (machine busy ${i.machineBusyPercent} % meanwhile) |`);
const t = results.telemetry;
out.push(`| telemetry sample, ${t.services} services: sampleCpuUs p50 / p95 (n ${t.sampleCpuUs.n}) | ${t.sampleCpuUs.p50} / ${r1(t.sampleCpuUs.p95)} µs; message ${t.messageBytes.p50} bytes |`);
process.stdout.write(`${out.join('\n')}\n`);
