#!/usr/bin/env node
// Fleet benchmark: one mosquitto, N simulated devices (test/helpers/fleet-sim.ts: protocol v1 as the agent
// speaks it, one MQTT connection each, all in this process), and `berth fleet deploy --all`.
//
//   node scripts/bench/fleet.mjs [--devices 500,1000,2000,4000] [--runs 3] [--apply-ms 500] [--berth DIR]
//
// Per fleet size N, with a fresh broker and fresh devices:
//   (a) wall time of `berth fleet deploy FILE --all --json` (process start → exit: connect, read the
//       retained state of the fleet, publish N retained desired states, follow N reported until all are
//       applied), --runs times, each a new revision; its peak RSS (VmHWM of the process) and CPU;
//   (b) the same deploy done by the floor: a minimal mqtt.js script (no inventory, no validation, no
//       retained read) that publishes N desired states and waits for N `applied` reports;
//   (c) at the broker over each berth deploy: messages received + sent per second (mosquitto's own
//       $SYS/broker/messages/{received,sent} counters, sys_interval 1 s) and mosquitto's CPU (utime +
//       stime of its process) as a share of one core: mosquitto is single-threaded, so 100 % is its ceiling;
//   (d) `berth fleet status --json` wall time and RSS for the N devices.
// Each simulated device takes --apply-ms from desired to applied, as a real deploy of a cached image does.
//
// Needs `npm ci && npm run build`, and an open-file limit above 2·N + 100 (ulimit -n). Prints Markdown on
// stdout and writes .cache/bench/fleet-<timestamp>.json (and fleet-latest.json); never BENCHMARKS.md.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds, log, prepareBench, repoRoot, requireBuiltBerth, sh, statusKiB, teardown } from './common.mjs';

const self = fileURLToPath(import.meta.url);
prepareBench(self, { packages: ['mosquitto'], rootReason: 'installing mosquitto' });

const { values: opt } = parseArgs({
  options: {
    devices: { type: 'string', default: '500,1000,2000' },
    runs: { type: 'string', default: '3' },
    'apply-ms': { type: 'string', default: '500' },
    berth: { type: 'string', default: repoRoot },
  },
});
const SIZES = opt.devices.split(',').map(Number);
const RUNS = Number(opt.runs);
const APPLY_MS = Number(opt['apply-ms']);
const berthDir = path.resolve(opt.berth);
const berthBin = path.join(berthDir, 'bin/berth');
requireBuiltBerth(berthDir);
const nofile = Number(sh('sh', ['-c', 'ulimit -n']));
if (nofile < 2 * Math.max(...SIZES) + 100) {
  console.error(`bench: open-file limit ${nofile} is too low for ${Math.max(...SIZES)} devices (mosquitto and the simulator each hold one socket per device); raise ulimit -n`);
  process.exit(1);
}

const { startMosquitto } = await import('../../test/helpers/services/mosquitto.ts');
const { FleetSim } = await import('../../test/helpers/fleet-sim.ts');
const mqtt = (await import('mqtt')).default;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r1 = (n) => Math.round(n * 10) / 10;

/** Runs a command, sampling its peak RSS and CPU from /proc until it exits. */
function measured(cmd, args) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hwmKiB = 0;
    let cpu = 0;
    const sample = () => {
      try {
        // A zombie has no VmHWM line any more: keep the last real sample.
        const hwm = statusKiB(proc.pid, 'VmHWM');
        if (Number.isFinite(hwm)) hwmKiB = Math.max(hwmKiB, hwm);
        cpu = cpuSeconds(proc.pid);
      } catch {
        /* exited between samples */
      }
    };
    const timer = setInterval(sample, 50);
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    proc.once('error', reject);
    proc.once('exit', (code) => {
      clearInterval(timer);
      resolve({ code, ms: performance.now() - started, hwmMiB: hwmKiB / 1024, cpuS: cpu, stdout, stderr });
    });
    sample();
  });
}

/** The floor: what any fleet tool must do, with nothing else (one process, like berth): sign and publish. */
const FLOOR = `
import fs from 'node:fs';
import mqtt from ${JSON.stringify(path.join(repoRoot, 'node_modules/mqtt/build/index.js'))};
import { FleetSigningKey } from ${JSON.stringify(path.join(berthDir, 'dist/protocol/signing.js'))};
const [url, prefix, n, revision, keyFile] = process.argv.slice(2);
const key = FleetSigningKey.fromPem(fs.readFileSync(keyFile), keyFile);
const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: 'floor-' + process.pid });
let left = Number(n);
const done = new Promise((r) => c.on('message', (t, p) => { const m = JSON.parse(p); if (m.revision === Number(revision) && m.status === 'applied' && --left === 0) r(); }));
await c.subscribeAsync('berth/v1/+/reported', { qos: 1 });
const body = { services: { web: { image: 'registry.example.com/app:1', command: ['sleep', '3600'] } } };
for (let i = 0; i < Number(n); i++) {
  const device = prefix + '-' + i;
  c.publish('berth/v1/' + device + '/desired', key.sign({ kind: 'desired', device, revision: Number(revision) }, JSON.stringify({ revision: Number(revision), ...body })), { qos: 1, retain: true });
}
await done;
await c.endAsync();
`;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-fleet-'));
const { steps, run: cleanup } = teardown(() => fs.rmSync(work, { recursive: true, force: true }));
const floorFile = path.join(work, 'floor.mjs');
fs.writeFileSync(floorFile, FLOOR);
// The fleet key both deployers sign with and the simulated devices trust (test/helpers/signing.ts).
const { testFleetKey } = await import('../../test/helpers/signing.ts');
const fleetKey = testFleetKey();
const keyFile = fleetKey.writePrivate(work);

/** mosquitto's cumulative message counters, from the next $SYS update. */
async function sysCounters(url) {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: `bench-sys-${process.pid}-${Date.now()}` });
  const got = {};
  const ready = new Promise((resolve) => c.on('message', (t, p) => {
    got[t.split('/').pop()] = Number(p.toString());
    if (got.received !== undefined && got.sent !== undefined) resolve();
  }));
  // Retained $SYS values may be up to 1 s old: take the first update after subscribing.
  await c.subscribeAsync(['$SYS/broker/messages/received', '$SYS/broker/messages/sent'], { qos: 0, rh: 2 });
  await ready;
  await c.endAsync();
  return got;
}

const facts = {
  date: new Date().toISOString(), nproc: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memTotalMiB: Math.round(os.totalmem() / 2 ** 20), kernel: os.release(), node: process.version,
  mosquitto: sh('sh', ['-c', 'mosquitto -h | head -1']) ?? 'unknown', commit: sh('git', ['-C', berthDir, 'rev-parse', '--short', 'HEAD']) ?? 'unknown',
  applyMs: APPLY_MS, runs: RUNS,
};
const results = [];
try {
  for (const N of SIZES) {
    log(`${N} devices: starting mosquitto and the simulator`);
    const broker = await startMosquitto({ extraConfig: ['max_connections -1', 'max_queued_messages 0', 'max_inflight_messages 0', 'sys_interval 1'] });
    steps.push(() => broker.stop());
    const brokerPid = Number(sh('pgrep', ['-f', `${broker.dir}/mosquitto.conf`]));
    const brokerRss0 = statusKiB(brokerPid, 'VmRSS');
    const brokerCpu0 = cpuSeconds(brokerPid);
    const t0 = performance.now();
    const sim = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'bench', count: N, applyMs: APPLY_MS, connectConcurrency: 200 });
    steps.push(() => sim.stop());
    const connectS = (performance.now() - t0) / 1000;
    // What N devices connecting (CONNECT, SUBSCRIBE, retained status + reported) cost the broker.
    const connectBrokerCpuS = cpuSeconds(brokerPid) - brokerCpu0;
    const brokerKiBPerDevice = (statusKiB(brokerPid, 'VmRSS') - brokerRss0) / N;
    const file = path.join(work, 'app.yaml');
    const berthRuns = [];
    const floorRuns = [];
    let revision = 0;
    for (let i = 0; i < RUNS; i++) {
      fs.writeFileSync(file, `services:\n  web:\n    image: registry.example.com/app:${i}\n    command: ["sleep", "3600"]\n`);
      const before = await sysCounters(broker.url);
      const cpu0 = cpuSeconds(brokerPid);
      const r = await measured(berthBin, ['fleet', 'deploy', file, '--all', '--broker', broker.url, '--signing-key', keyFile, '--json', '--timeout', '5m']);
      const cpu1 = cpuSeconds(brokerPid);
      const after = await sysCounters(broker.url);
      if (r.code !== 0) throw new Error(`berth fleet deploy exited ${r.code}: ${r.stderr.slice(-500)}`);
      const summary = JSON.parse(r.stdout);
      if (summary.counts.applied !== N) throw new Error(`only ${summary.counts.applied} of ${N} applied`);
      revision = Math.max(...summary.devices.map((d) => d.revision));
      const msgs = after.received - before.received + (after.sent - before.sent);
      berthRuns.push({ wallS: r.ms / 1000, rolloutS: summary.elapsedMs / 1000, rssMiB: r.hwmMiB, cpuS: r.cpuS, brokerMsgs: msgs, brokerMsgsPerS: msgs / (r.ms / 1000), brokerCpuPct: ((cpu1 - cpu0) * 100) / (r.ms / 1000) });
      log(`${N}: berth deploy ${r1(r.ms / 1000)} s, ${r1(r.hwmMiB)} MiB, broker ${Math.round(msgs / (r.ms / 1000))} msg/s at ${Math.round(((cpu1 - cpu0) * 100) / (r.ms / 1000))} % of a core`);
      revision++;
      const f = await measured(process.execPath, [floorFile, broker.url, 'bench', String(N), String(revision), keyFile]);
      if (f.code !== 0) throw new Error(`floor exited ${f.code}: ${f.stderr.slice(-500)}`);
      floorRuns.push({ wallS: f.ms / 1000, rssMiB: f.hwmMiB, cpuS: f.cpuS });
      log(`${N}: floor ${r1(f.ms / 1000)} s, ${r1(f.hwmMiB)} MiB`);
    }
    const st = await measured(berthBin, ['fleet', 'status', '--json', '--broker', broker.url]);
    if (st.code !== 0 || JSON.parse(st.stdout).length !== N) throw new Error(`berth fleet status failed: ${st.stderr.slice(-300)}`);
    const m = (xs, k) => median(xs.map((x) => x[k]));
    results.push({
      devices: N, connectS, connectBrokerCpuS, brokerKiBPerDevice,
      berth: { wallS: m(berthRuns, 'wallS'), rolloutS: m(berthRuns, 'rolloutS'), rssMiB: m(berthRuns, 'rssMiB'), cpuS: m(berthRuns, 'cpuS'), runs: berthRuns },
      floor: { wallS: m(floorRuns, 'wallS'), rssMiB: m(floorRuns, 'rssMiB'), cpuS: m(floorRuns, 'cpuS'), runs: floorRuns },
      broker: { msgsPerS: m(berthRuns, 'brokerMsgsPerS'), msgsPerDeploy: m(berthRuns, 'brokerMsgs'), cpuPct: m(berthRuns, 'brokerCpuPct'), rssMiB: statusKiB(brokerPid, 'VmRSS') / 1024 },
      status: { wallS: st.ms / 1000, rssMiB: st.hwmMiB },
      simRssMiB: process.memoryUsage().rss / 2 ** 20,
    });
    // This size's simulator and broker go; the work dir stays for the next size.
    while (steps.length > 0) await steps.pop()();
  }
} finally {
  await cleanup();
}

const out = path.join(repoRoot, '.cache/bench');
fs.mkdirSync(out, { recursive: true });
const json = JSON.stringify({ facts, results }, null, 2);
fs.writeFileSync(path.join(out, `fleet-${facts.date.replace(/[:.]/g, '-')}.json`), json);
fs.writeFileSync(path.join(out, 'fleet-latest.json'), json);

console.log(`## Fleet (${facts.date.slice(0, 10)}; ${facts.nproc} cores, ${facts.cpuModel}, Node ${facts.node}, ${facts.mosquitto}, commit ${facts.commit})\n`);
console.log(`Each simulated device takes ${APPLY_MS} ms from desired to applied; medians of ${RUNS} deploys.\n`);
console.log('| devices | berth fleet deploy --all | floor (bare mqtt.js) | ratio | berth peak RSS | broker msg/s | broker CPU (1 core) | broker µs/msg | fleet status | devices connect (broker CPU) | broker RSS/device |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) {
  console.log(`| ${r.devices} | ${r1(r.berth.wallS)} s (rollout ${r1(r.berth.rolloutS)} s, CPU ${r1(r.berth.cpuS)} s) | ${r1(r.floor.wallS)} s | ${(r.berth.wallS / r.floor.wallS).toFixed(2)}× | ${r1(r.berth.rssMiB)} MiB (floor ${r1(r.floor.rssMiB)}) | ${Math.round(r.broker.msgsPerS)} (${Math.round(r.broker.msgsPerDeploy)} per deploy) | ${Math.round(r.broker.cpuPct)} % | ${r1((r.broker.cpuPct * 1e4) / r.broker.msgsPerS)} | ${r1(r.status.wallS)} s, ${r1(r.status.rssMiB)} MiB | ${r1(r.connectS)} s (${Math.round((r.connectBrokerCpuS * 1e6) / r.devices)} µs each) | ${r1(r.brokerKiBPerDevice)} KiB |`);
}
