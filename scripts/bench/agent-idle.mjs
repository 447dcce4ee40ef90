#!/usr/bin/env node
// Idle agent footprint, builds side by side: `berth agent` with no services, started in turn from each
// build directory (alternating, --rounds times), beside a bare `node` with bin/berth's flags.
//
//   node scripts/bench/agent-idle.mjs [--berth DIR[,DIR...]] [--rounds 3] [--from 10] [--to 25] [--no-broker]
//
// Per run: VmRSS sampled each second from --from to --to seconds after start (median), RssAnon/RssFile
// at the end, CPU (utime + stime) over the sampling window as % of one core. With a broker (default) the
// agent connects to a local mosquitto first (online status awaited), as a fleet device idles; --no-broker
// runs it local-only. The full deploy/telemetry bench is scripts/bench/agent.mjs; this one only isolates
// start-up and idle, where a change to the agent's loading path shows. Prints Markdown; run it under
// `flock /tmp/berth-bench.lock` on a shared machine and note the load it prints.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuSeconds, log, prepareBench, repoRoot, requireBuiltBerth, statusKiB, teardown } from './common.mjs';

const self = fileURLToPath(import.meta.url);
prepareBench(self, { packages: ['mosquitto'], rootReason: 'the agent opens its state root and cgroups' });

const { values: opt } = parseArgs({
  options: {
    berth: { type: 'string', default: repoRoot },
    rounds: { type: 'string', default: '3' },
    from: { type: 'string', default: '10' },
    to: { type: 'string', default: '25' },
    'no-broker': { type: 'boolean', default: false },
  },
});
const dirs = opt.berth.split(',').map((d) => path.resolve(d));
for (const d of dirs) requireBuiltBerth(d);
const [FROM, TO, ROUNDS] = [Number(opt.from), Number(opt.to), Number(opt.rounds)];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mib = (kib) => Math.round((kib / 1024) * 10) / 10;
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-idle-'));
const { steps: cleanups, run: cleanup } = teardown(() => fs.rmSync(work, { recursive: true, force: true }));

/** Samples one started process: VmRSS each second in [FROM, TO], anon/file at the end, CPU over the window. */
async function sample(proc) {
  const rss = [];
  await sleep(FROM * 1000);
  const cpu0 = cpuSeconds(proc.pid);
  for (let t = FROM; t <= TO; t++) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`process ${proc.pid} exited (${proc.exitCode}) while sampled`);
    rss.push(statusKiB(proc.pid, 'VmRSS'));
    if (t < TO) await sleep(1000);
  }
  const cpu = ((cpuSeconds(proc.pid) - cpu0) / (TO - FROM)) * 100;
  return { rss: median(rss), anon: statusKiB(proc.pid, 'RssAnon'), file: statusKiB(proc.pid, 'RssFile'), cpu };
}

async function stop(proc) {
  // A process killed by a signal has no exit code but a signal code: either means 'exit' was emitted.
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

try {
  let brokerUrl;
  if (!opt['no-broker']) {
    const { startMosquitto } = await import('../../test/helpers/services/mosquitto.ts');
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    brokerUrl = broker.url;
  }
  const config = path.join(work, 'agent.yaml');
  fs.writeFileSync(config, 'allowUnsigned: true\n');
  const rows = dirs.map((dir) => ({ dir, runs: [] }));
  const bare = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const row of rows) {
      const root = path.join(work, `root-${rows.indexOf(row)}`);
      const args = ['--root', root, 'agent', '--config', config, '--no-governor'];
      if (brokerUrl) args.push('--broker', brokerUrl, '--device-id', `idle-${round}`);
      const proc = spawn(path.join(row.dir, 'bin/berth'), args, { stdio: ['ignore', 'ignore', 'inherit'] });
      cleanups.push(() => stop(proc));
      const r = await sample(proc);
      await stop(proc);
      row.runs.push({ ...r, load: load() });
      log(`${row.dir} round ${round + 1}: VmRSS ${mib(r.rss)} MiB, anon ${mib(r.anon)}, file ${mib(r.file)}, cpu ${r.cpu.toFixed(2)} % (load ${load()})`);
    }
    // bin/berth's flags and environment, nothing loaded (the floor the goal is stated against).
    const p = spawn(process.execPath, ['--max-semi-space-size=1', '--expose-gc', '-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
      env: { ...process.env, MALLOC_ARENA_MAX: '1', NODE_EXTRA_CA_CERTS: '' },
    });
    cleanups.push(() => stop(p));
    const r = await sample(p);
    await stop(p);
    bare.push(r);
  }
  const bareRss = median(bare.map((r) => r.rss));
  console.log(`Idle agent (${brokerUrl ? 'local mosquitto' : 'no broker'}, no services), VmRSS median of ${FROM}–${TO} s, ${ROUNDS} rounds, Node ${process.version}`);
  console.log(`bare node: ${mib(bareRss)} MiB (anon ${mib(median(bare.map((r) => r.anon)))})\n`);
  console.log('| build | VmRSS MiB (runs) | median | vs bare | anon | file | CPU % | load |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const { dir, runs } of rows) {
    const m = median(runs.map((r) => r.rss));
    console.log(
      `| ${dir} | ${runs.map((r) => mib(r.rss)).join(' / ')} | ${mib(m)} | +${mib(m - bareRss)} | ${mib(median(runs.map((r) => r.anon)))} | ${mib(median(runs.map((r) => r.file)))} | ${median(runs.map((r) => r.cpu)).toFixed(2)} | ${runs.map((r) => r.load.split(' ')[0]).join(', ')} |`,
    );
  }
} finally {
  await cleanup();
}
