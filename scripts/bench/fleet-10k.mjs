#!/usr/bin/env node
// The fleet service at 10,000 devices (issue 21): one mosquitto, N simulated devices (test/helpers/fleet-sim.ts:
// one MQTT 5 client session each, protocol v1 as the agent speaks it, the agent's own message intake, signed
// desired states verified), telemetry at the agents' real rate, and `berth fleet serve` (SQLite) over them.
//
//   node scripts/bench/fleet-10k.mjs [--devices 10000] [--apply-ms 500] [--telemetry 60s] [--idle 120] [--berth DIR] [--db sqlite|postgres]
//                                    [--steady-ms 200] [--profile DIR] [--trace on|off] [--stream off|on]
//
// --db postgres runs the service on a private PostgreSQL cluster (test/helpers/services/postgres.ts: loopback
// only, fsync and synchronous_commit off, as the tests run it: an optimistic PostgreSQL) instead of SQLite.
//
// Measured, in this order, with the service process sampled from /proc every second (RSS, CPU):
//   (a) start: the service reads the retained state of N devices until GET /api/v1/devices shows them all;
//   (b) idle: --idle seconds of only telemetry (N devices every --telemetry: the agent's default on an SD
//       card is 60 s), the service's CPU and RSS;
//   (c) one rollout through the service (POST /api/v1/rollouts, all devices, no rate: as fast as it goes):
//       time from the POST to every device `applied` in the rollout record (GET /api/v1/rollouts, summaries);
//   (d) the same deploy by the CLI fan-out, `berth fleet deploy FILE --all`, process start to exit, while the
//       service keeps running (it ingests what the deploy causes, as it would in production);
//   (e) throughout (b)–(d), the fleet-list API: GET /api/v1/devices (every device: what the dashboard's fleet
//       page loaded before it paged; kept so runs compare), ?limit=100&after=… (one page: what it loads now) and ?group=canary (a filter
//       matching 100 devices), and GET /api/v1/device-filters (the paged dashboard's menus and counts), one
//       after the other, about 4 rounds a second: latency p50/p95/max per phase
//       (goal: p95 < 100 ms);
//   (e') besides those rounds, one page of 100 every --steady-ms from a worker thread of its own ("steady page"):
//       the rounds give the short rollout phase only ~10 calls of each kind (p95 is then its slowest call), and
//       the rounds run on the bench's main thread, whose event loop also runs the 10,000 simulated devices, so
//       a call's time there includes the simulator's own delays; the worker's loop has nothing else to do;
//   (f) the database: after a clean stop, bytes per telemetry row from SQLite's dbstat (table + index
//       pages) and so bytes per device-day at the --telemetry rate (raw kept 24 h + one per-minute row a
//       minute). This is EXTRAPOLATED from the rows the run wrote (N devices × its minutes), not a day run.
// Images are given by digest, so no registry is involved (the service takes a digest as it is).
//
// --trace (on by default) runs the service with BERTH_FLEET_TRACE (src/fleet/service/slice-trace.ts) and prints,
// per phase, the event loop's delay and where its synchronous time went, and the worst stalls of the rollout
// phase with the slices that ran in them: what a slow page waited behind.
//
// --stream on keeps one GET /api/v1/stream (the dashboard's live feed) open throughout (b)–(d), as an open
// dashboard does, and counts its `device` messages per phase: with it the service sends every changed
// device's summary each second, which a run without a dashboard never exercises. Off by default, so runs compare.
//
// --profile DIR profiles the service's CPU into DIR/<pid>.cpuprofile (written at its stop; cpu-prof.cjs):
// what held its event loop.
//
// Needs `npm run build` and ulimit -n > N + 200. Prints Markdown on stdout and writes
// .cache/bench/fleet-10k-<timestamp>.json (and fleet-10k-latest.json); never BENCHMARKS.md.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { cpuSeconds, log, prepareBench, repoRoot, requireBuiltBerth, sh, statusKiB, teardown } from './common.mjs';

const self = fileURLToPath(import.meta.url);
prepareBench(self, { packages: ['mosquitto'], rootReason: 'installing mosquitto' });

const { values: opt } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    'apply-ms': { type: 'string', default: '500' },
    telemetry: { type: 'string', default: '60s' },
    idle: { type: 'string', default: '120' },
    berth: { type: 'string', default: repoRoot },
    db: { type: 'string', default: 'sqlite' },
    'steady-ms': { type: 'string', default: '200' },
    profile: { type: 'string' },
    trace: { type: 'string', default: 'on' },
    stream: { type: 'string', default: 'off' },
  },
});
const N = Number(opt.devices);
if (opt.db !== 'sqlite' && opt.db !== 'postgres') {
  console.error(`bench: --db must be sqlite or postgres, not ${opt.db}`);
  process.exit(2);
}
const APPLY_MS = Number(opt['apply-ms']);
const IDLE_S = Number(opt.idle);
const berthDir = path.resolve(opt.berth);
const berthBin = path.join(berthDir, 'bin/berth');
requireBuiltBerth(berthDir);
const nofile = Number(sh('sh', ['-c', 'ulimit -n']));
if (nofile < N + 200) { // per process: the simulator and mosquitto each hold one socket per device
  console.error(`bench: open-file limit ${nofile} is too low for ${N} devices; raise ulimit -n`);
  process.exit(1);
}

const { startMosquitto } = await import('../../test/helpers/services/mosquitto.ts');
const { FleetSim } = await import('../../test/helpers/fleet-sim.ts');
const { startService, createToken, api } = await import('../../test/helpers/fleet-service.ts');
const { testFleetKey } = await import('../../test/helpers/signing.ts');
const { parseDuration } = await import('../../src/duration.ts');
const TELEMETRY_MS = parseDuration(opt.telemetry, '--telemetry');

const r1 = (n) => Math.round(n * 10) / 10;
const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-fleet10k-'));
const { steps, run: cleanup } = teardown(() => fs.rmSync(work, { recursive: true, force: true }));
const fleetKey = testFleetKey();
const keyFile = fleetKey.writePrivate(work);
// 100 devices in a group, for the filtered list; the rest come from the broker's retained state.
const canary = Array.from({ length: Math.min(100, N) }, (_, i) => `  bench-${i}: {groups: [canary]}`).join('\n');
const fleetFile = path.join(work, 'fleet.yaml');
fs.writeFileSync(fleetFile, `signingKey: ${path.basename(keyFile)}\ndevices:\n${canary}\n`);
const dataDir = path.join(work, 'data');
const traceFile = path.join(work, 'trace.jsonl');
const digestRef = (n) => `registry.example.com/bench/app@sha256:${crypto.createHash('sha256').update(`bench-${n}`).digest('hex')}`;
const compose = (n) => `name: bench\nservices:\n  web:\n    image: ${digestRef(n)}\n    command: ["sleep", "3600"]\n`;

const facts = {
  date: new Date().toISOString(), nproc: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
  node: process.version, mosquitto: sh('sh', ['-c', 'mosquitto -h | head -1']) ?? 'unknown', commit: sh('git', ['-C', berthDir, 'rev-parse', '--short', 'HEAD']) ?? 'unknown',
  devices: N, db: opt.db, applyMs: APPLY_MS, telemetryMs: TELEMETRY_MS, idleS: IDLE_S, loadAtStart: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
};

/** The service's round-trip counts (BERTH_DB_STATS): SIGUSR2 makes it print a `db-stats {json}` line on stderr; undefined if it does not. */
async function dbStats(service) {
  // Only a service that printed a first db-stats line handles SIGUSR2 (it would end an older build).
  if (!service.logs().includes('db-stats ')) return undefined;
  const before = service.logs().length;
  service.proc.kill('SIGUSR2');
  for (let i = 0; i < 100; i++) {
    const m = /db-stats (\{.*\})\n/.exec(service.logs().slice(before));
    if (m) return JSON.parse(m[1]);
    await sleep(20);
  }
  return undefined; // a berth from before the counter (--berth an older build): not counted
}

/** What happened between two dbStats: statements in all, and per kind transactions, statements and statements per transaction. */
function statsDelta(a, b) {
  const kinds = {};
  for (const [k, v] of Object.entries(b.kinds)) {
    const tx = v.tx - (a.kinds[k]?.tx ?? 0);
    const queries = v.queries - (a.kinds[k]?.queries ?? 0);
    if (queries > 0) kinds[k] = { tx, queries, ...(tx > 0 && { perTx: Math.round((queries / tx) * 10) / 10 }) };
  }
  return { queries: b.queries - a.queries, kinds };
}

/** Samples the service every second: per phase, peak/last RSS and CPU seconds used. */
function sampler(pid) {
  const phases = new Map();
  let current;
  const tick = () => {
    if (!current) return;
    try {
      const rss = statusKiB(pid, 'VmRSS') / 1024;
      current.rssMaxMiB = Math.max(current.rssMaxMiB, rss);
      current.rssLastMiB = rss;
    } catch {
      /* exited */
    }
  };
  const timer = setInterval(tick, 1000);
  return {
    phase(name) {
      tick();
      if (current) current.end(); // eslint-disable-line no-use-before-define
      const cpu0 = cpuSeconds(pid);
      const t0 = performance.now();
      const p = { name, startedAt: Date.now(), rssMaxMiB: 0, rssLastMiB: 0, cpuS: 0, wallS: 0, failed: 0, streamDevices: 0, lat: { all: [], page: [], group: [], filters: [], steady: [] } };
      p.end = () => {
        p.cpuS = cpuSeconds(pid) - cpu0;
        p.wallS = (performance.now() - t0) / 1000;
      };
      phases.set(name, p);
      current = p;
      tick();
      return p;
    },
    stop() {
      tick();
      current?.end();
      current = undefined;
      clearInterval(timer);
      return [...phases.values()];
    },
    get current() {
      return current;
    },
  };
}

/** The dashboard's fleet-list calls, 4 a second, into the current phase's latency lists. */
function listProbe(url, token, samples) {
  let stop = false;
  const done = (async () => {
    while (!stop) {
      const calls = [['all', '/api/v1/devices'], ['page', '/api/v1/devices?limit=100&after=bench-5000'], ['group', '/api/v1/devices?group=canary'], ['filters', '/api/v1/device-filters']];
      for (const [key, path] of calls) {
        const t0 = performance.now();
        // A failed call (a reset keep-alive connection) is counted, not fatal: the run goes on.
        const r = await api(url, 'GET', path, { token }).catch((err) => ({ status: String(err.cause?.code ?? err.message) }));
        const ms = performance.now() - t0;
        if (r.status !== 200) {
          log(`GET ${path}: ${r.status}`);
          if (samples.current) samples.current.failed++;
          continue;
        }
        samples.current?.lat[key].push(ms);
      }
      await sleep(250);
    }
  })();
  return async () => {
    stop = true;
    await done;
  };
}

/**
 * One page of 100 every `everyMs`, from a worker thread (its own event loop: the simulated devices on the
 * main thread do not delay it); each latency is posted to the main thread, into the current phase.
 */
function steadyProbe(url, token, everyMs, samples) {
  const code = `
    const { parentPort, workerData: { url, token, everyMs } } = require('node:worker_threads');
    let stop = false;
    parentPort.on('message', () => { stop = true; });
    (async () => {
      while (!stop) {
        const t0 = performance.now();
        let status;
        try {
          const r = await fetch(url + '/api/v1/devices?limit=100&after=bench-5000', { headers: { authorization: 'Bearer ' + token } });
          await r.arrayBuffer();
          status = r.status;
        } catch (err) {
          status = String(err.cause?.code ?? err.message);
        }
        const ms = performance.now() - t0;
        parentPort.postMessage({ status, ms });
        await new Promise((r) => setTimeout(r, Math.max(0, everyMs - ms)));
      }
      parentPort.close();
    })();
  `;
  const worker = new Worker(code, { eval: true, workerData: { url, token, everyMs } });
  worker.on('message', ({ status, ms }) => {
    if (status !== 200) {
      log(`steady page: ${status}`);
      if (samples.current) samples.current.failed++;
      return;
    }
    samples.current?.lat.steady.push(ms);
  });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  return async () => {
    worker.postMessage('stop');
    await exited;
  };
}

/** --stream on: GET /api/v1/stream held open as a dashboard holds it; its `device` messages counted into the current phase. */
function streamReader(url, token, samples) {
  const ac = new AbortController();
  const done = (async () => {
    const r = await fetch(`${url}/api/v1/stream`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
    const text = new TextDecoder();
    let rest = ''; // an SSE message cut between two reads
    for await (const chunk of r.body) {
      const messages = (rest + text.decode(chunk, { stream: true })).split('\n\n');
      rest = messages.pop();
      if (samples.current) samples.current.streamDevices += messages.filter((m) => m.startsWith('event: device\n')).length;
    }
  })().catch((err) => {
    if (!ac.signal.aborted) log(`stream: ${err.message}`);
  });
  return async () => {
    ac.abort();
    await done;
  };
}

const results = {};
try {
  log(`starting mosquitto and ${N} simulated devices (telemetry every ${TELEMETRY_MS / 1000} s)`);
  const broker = await startMosquitto({ extraConfig: ['max_connections -1', 'max_queued_messages 0', 'max_inflight_messages 0'] });
  steps.push(() => broker.stop());
  let t0 = performance.now();
  const sim = await FleetSim.start({ brokerUrl: broker.url, fleetKey: fleetKey.key.publicKey, prefix: 'bench', count: N, applyMs: APPLY_MS, telemetryMs: TELEMETRY_MS, connectConcurrency: 200 });
  steps.push(() => sim.stop());
  results.simConnectS = (performance.now() - t0) / 1000;
  log(`${N} devices connected in ${r1(results.simConnectS)} s; starting berth fleet serve`);

  let pgUrl;
  if (opt.db === 'postgres') {
    const { startPostgres } = await import('../../test/helpers/services/postgres.ts');
    const pgServer = await startPostgres();
    steps.push(() => pgServer.stop());
    pgUrl = await pgServer.createDatabase('bench');
  }
  t0 = performance.now();
  // Node refuses --cpu-prof in NODE_OPTIONS: a preload starts the profiler instead (cpu-prof.cjs).
  const profileEnv = opt.profile ? { NODE_OPTIONS: `--require ${path.join(path.dirname(self), 'cpu-prof.cjs')}`, BERTH_CPU_PROF_DIR: path.resolve(opt.profile) } : {};
  const traceEnv = opt.trace === 'on' ? { BERTH_FLEET_TRACE: traceFile } : {};
  // On PostgreSQL the service counts its round trips (src/fleet/service/db-stats.ts), read around the rollout.
  const statsEnv = pgUrl ? { BERTH_DB_STATS: '1' } : {};
  const service = await startService(['--data', dataDir, '--broker', broker.url, '--fleet-file', fleetFile, ...(pgUrl ? ['--db', pgUrl] : [])], { ...profileEnv, ...statsEnv, ...traceEnv });
  steps.push(() => service.stop());
  const pid = service.proc.pid;
  const samples = sampler(pid);
  samples.phase('start');
  const token = await createToken('deploy', dataDir, pgUrl);
  for (;;) {
    const r = await api(service.url, 'GET', '/api/v1/devices?online=true', { token });
    if (r.status !== 200 && r.status !== 503) throw new Error(`GET /api/v1/devices: ${r.status} ${JSON.stringify(r.body)}`);
    if (r.status === 200 && r.body.devices.length >= N) break;
    await sleep(1000);
  }
  results.serviceReadyS = (performance.now() - t0) / 1000;
  log(`service sees ${N} devices online after ${r1(results.serviceReadyS)} s`);

  const stopProbe = listProbe(service.url, token, samples);
  const stopSteady = steadyProbe(service.url, token, Number(opt['steady-ms']), samples);
  const stopStream = opt.stream === 'on' ? streamReader(service.url, token, samples) : async () => {};
  samples.phase('idle');
  await sleep(IDLE_S * 1000);

  const statsBefore = pgUrl ? await dbStats(service) : undefined;
  samples.phase('service rollout');
  t0 = performance.now();
  const created = await api(service.url, 'POST', '/api/v1/rollouts', { token, body: { compose: compose(1), all: true, timeout: '10m' } });
  if (created.status !== 201 && created.status !== 200) throw new Error(`POST /api/v1/rollouts: ${created.status} ${JSON.stringify(created.body)}`);
  const createMs = performance.now() - t0;
  const id = created.body.id;
  let summary;
  for (;;) {
    const r = await api(service.url, 'GET', '/api/v1/rollouts?limit=5', { token });
    summary = r.body.rollouts.find((x) => x.id === id);
    if (summary.finishedAt !== null) break;
    await sleep(250);
  }
  results.service = { createMs, allAppliedS: (performance.now() - t0) / 1000, counts: summary.counts, state: summary.state };
  log(`service rollout: ${summary.state}, ${summary.counts.applied}/${N} applied in ${r1(results.service.allAppliedS)} s (create ${Math.round(createMs)} ms)`);
  const statsAfter = statsBefore && (await dbStats(service));
  if (statsAfter) {
    results.roundTrips = statsDelta(statsBefore, statsAfter);
    log(`round trips during the service rollout: ${JSON.stringify(results.roundTrips)}`);
  }
  if (summary.counts.applied !== N) throw new Error(`service rollout: only ${summary.counts.applied} of ${N} applied: ${JSON.stringify(summary.counts)}`);

  samples.phase('CLI fan-out');
  const file = path.join(work, 'app.yaml');
  fs.writeFileSync(file, compose(2));
  t0 = performance.now();
  const cli = await new Promise((resolve, reject) => {
    const p = spawn(berthBin, ['fleet', 'deploy', file, '--all', '--broker', broker.url, '--signing-key', keyFile, '--json', '--timeout', '10m'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.once('error', reject);
    p.once('exit', (code) => resolve({ code, out, err }));
  });
  if (cli.code !== 0) throw new Error(`berth fleet deploy exited ${cli.code}: ${cli.err.slice(-500)}`);
  const cliSummary = JSON.parse(cli.out);
  results.cli = { wallS: (performance.now() - t0) / 1000, rolloutS: cliSummary.elapsedMs / 1000, applied: cliSummary.counts.applied };
  log(`CLI fan-out: ${cliSummary.counts.applied}/${N} applied in ${r1(results.cli.wallS)} s`);
  // The service hears the CLI's deploy too: let it settle before the last sample.
  samples.phase('after');
  await sleep(10_000);
  await stopProbe();
  await stopSteady();
  await stopStream();
  results.phases = samples.stop().map((p) => ({
    name: p.name, startedAt: p.startedAt, wallS: p.wallS, failedCalls: p.failed, cpuPct: (p.cpuS * 100) / p.wallS, rssMaxMiB: p.rssMaxMiB, rssLastMiB: p.rssLastMiB,
    listAll: { n: p.lat.all.length, p50: pct(p.lat.all, 50), p95: pct(p.lat.all, 95), max: pct(p.lat.all, 100) },
    listGroup: { n: p.lat.group.length, p50: pct(p.lat.group, 50), p95: pct(p.lat.group, 95), max: pct(p.lat.group, 100) },
    listPage: { n: p.lat.page.length, p50: pct(p.lat.page, 50), p95: pct(p.lat.page, 95), max: pct(p.lat.page, 100) },
    filters: { n: p.lat.filters.length, p50: pct(p.lat.filters, 50), p95: pct(p.lat.filters, 95), max: pct(p.lat.filters, 100) },
    steady: { n: p.lat.steady.length, p50: pct(p.lat.steady, 50), p95: pct(p.lat.steady, 95), max: pct(p.lat.steady, 100) },
    streamDevices: p.streamDevices,
  }));

  // A clean stop checkpoints the WAL into fleet.db; then measure what telemetry takes there.
  const benchS = performance.now() / 1000;
  await service.stop();
  steps.pop();
  if (opt.trace === 'on') results.trace = (await import('./fleet-trace.mjs')).readTrace(traceFile, results.phases);
  const perDay = 86_400_000 / TELEMETRY_MS;
  if (pgUrl) {
    // PostgreSQL: table + indexes + TOAST per table (pg_total_relation_size), after a VACUUM so dead rows do not count.
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    await client.query('VACUUM');
    const table = async (t) => {
      const rows = Number((await client.query(`SELECT COUNT(*) AS n FROM ${t}`)).rows[0].n);
      const b = Number((await client.query('SELECT pg_total_relation_size($1) AS b', [t])).rows[0].b);
      return { rows, bytes: b, bytesPerRow: rows > 0 ? b / rows : NaN };
    };
    const raw = await table('telemetry_raw');
    const minute = await table('telemetry_minute');
    results.db = {
      fileMiB: Number((await client.query('SELECT pg_database_size(current_database()) AS b')).rows[0].b) / 2 ** 20, raw, minute,
      perDeviceDayKiB: (raw.bytesPerRow * perDay + minute.bytesPerRow * 1440) / 1024,
      rolloutDevicesBytesPerRow: (await table('rollout_devices')).bytesPerRow, devicesBytesPerRow: (await table('devices')).bytesPerRow,
    };
    await client.end();
  } else {
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path.join(dataDir, 'fleet.db'), { readonly: true });
    const bytes = (names) => Number(db.prepare(`SELECT COALESCE(SUM(pgsize), 0) AS b FROM dbstat WHERE name IN (${names.map(() => '?').join(', ')})`).get(...names).b);
    const indexes = (table) => db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?").all(table).map((r) => r.name);
    const table = (t) => {
      const rows = Number(db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get().n);
      const b = bytes([t, ...indexes(t)]);
      return { rows, bytes: b, bytesPerRow: rows > 0 ? b / rows : NaN };
    };
    const raw = table('telemetry_raw');
    const minute = table('telemetry_minute');
    results.db = {
      fileMiB: fs.statSync(path.join(dataDir, 'fleet.db')).size / 2 ** 20, raw, minute,
      // Raw samples are kept 24 h, so a device-day holds one day of them; minutes, one a minute.
      perDeviceDayKiB: (raw.bytesPerRow * perDay + minute.bytesPerRow * 1440) / 1024,
      rolloutDevicesBytesPerRow: table('rollout_devices').bytesPerRow, devicesBytesPerRow: table('devices').bytesPerRow,
    };
    db.close();
  }
  facts.loadAtEnd = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  facts.benchS = benchS;
  results.simRssMiB = process.memoryUsage().rss / 2 ** 20;
} finally {
  await cleanup();
}

const out = path.join(repoRoot, '.cache/bench');
fs.mkdirSync(out, { recursive: true });
const json = JSON.stringify({ facts, results }, null, 2);
fs.writeFileSync(path.join(out, `fleet-10k-${facts.date.replace(/[:.]/g, '-')}.json`), json);
fs.writeFileSync(path.join(out, 'fleet-10k-latest.json'), json);

const ms = (x) => (Number.isFinite(x) ? `${Math.round(x)} ms` : '–');
console.log(`## Fleet service, ${N} devices, ${opt.db === 'postgres' ? 'PostgreSQL' : 'SQLite'} (${facts.date.slice(0, 10)}; ${facts.nproc} cores, ${facts.cpuModel}, Node ${facts.node}, commit ${facts.commit}; load ${facts.loadAtStart} → ${facts.loadAtEnd})\n`);
console.log(`Devices connect: ${r1(results.simConnectS)} s; the service shows all online ${r1(results.serviceReadyS)} s after its start. Each device applies in ${APPLY_MS} ms and sends telemetry every ${TELEMETRY_MS / 1000} s.\n`);
console.log(`| rollout of ${N} devices | time to all applied |`);
console.log('| --- | --- |');
console.log(`| berth fleet serve (POST /api/v1/rollouts) | ${r1(results.service.allAppliedS)} s (create ${ms(results.service.createMs)}) |`);
console.log(`| berth fleet deploy --all (CLI fan-out) | ${r1(results.cli.wallS)} s (rollout ${r1(results.cli.rolloutS)} s) |\n`);
console.log('| phase | wall | service CPU (1 core = 100 %) | service RSS max / end | GET /devices (all) p50 / p95 / max | ?limit=100 page p50 / p95 / max | ?group=canary p50 / p95 / max | device-filters p50 / p95 / max |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const p of results.phases) {
  console.log(`| ${p.name}${p.failedCalls ? ` (${p.failedCalls} list calls failed)` : ''} | ${r1(p.wallS)} s | ${Math.round(p.cpuPct)} % | ${Math.round(p.rssMaxMiB)} / ${Math.round(p.rssLastMiB)} MiB | ${ms(p.listAll.p50)} / ${ms(p.listAll.p95)} / ${ms(p.listAll.max)} (${p.listAll.n}) | ${ms(p.listPage.p50)} / ${ms(p.listPage.p95)} / ${ms(p.listPage.max)} | ${ms(p.listGroup.p50)} / ${ms(p.listGroup.p95)} / ${ms(p.listGroup.max)} | ${ms(p.filters.p50)} / ${ms(p.filters.p95)} / ${ms(p.filters.max)} |`);
}
// p95 of fewer than 20 calls is only their slowest: said so rather than printed as a percentile.
const p95of = (x) => (x.n >= 20 ? ms(x.p95) : `(${x.n} calls: max ${ms(x.max)})`);
console.log(`\nSteady page of 100 (a worker thread, one every ${opt['steady-ms']} ms, beside the rounds above):\n`);
console.log('| phase | calls | p50 | p95 | max |');
console.log('| --- | --- | --- | --- | --- |');
for (const p of results.phases) if (p.steady.n > 0) console.log(`| ${p.name} | ${p.steady.n} | ${ms(p.steady.p50)} | ${p95of(p.steady)} | ${ms(p.steady.max)} |`);
if (opt.stream === 'on') console.log(`\nLive stream held open (GET /api/v1/stream): device messages per phase: ${results.phases.map((p) => `${p.name} ${p.streamDevices}`).join(', ')}.`);
const d = results.db;
console.log(`\nTelemetry in ${opt.db === 'postgres' ? 'PostgreSQL (pg_total_relation_size after VACUUM: table, indexes, TOAST)' : 'SQLite (dbstat, table + indexes)'}: raw ${r1(d.raw.bytesPerRow)} B/row (${d.raw.rows} rows), per-minute ${r1(d.minute.bytesPerRow)} B/row (${d.minute.rows} rows): **${r1(d.perDeviceDayKiB)} KiB per device-day** at one sample per ${TELEMETRY_MS / 1000} s (extrapolated from this run's rows). ${opt.db === 'postgres' ? 'The database' : 'fleet.db'} ${r1(d.fileMiB)} MiB at the end.`);
if (results.trace) console.log(`\n${(await import('./fleet-trace.mjs')).traceMarkdown(results.trace)}`);
