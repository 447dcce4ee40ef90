#!/usr/bin/env node
// Chaos runs of issue 23, repeatable and bounded: kill -9 during pulls (some forced onto the killed
// pull's pid) and hostile desired states against a live agent. Everything is on loopback: a private
// registry, mosquitto and the agent, started here and stopped at the end.
//
//   node scripts/chaos/run.mjs [--pull-kills 12] [--payloads 300] [--seed 23] [--berth bin/berth]
//
// As root, after npm run build (--berth: another checkout's launcher, to compare builds).
//
// Pulls: each round starts `berth pull` of a 48 MiB-layer image into one root and kill -9s it after a
// random 100–1500 ms; every third round the next pull is made to get the killed pull's pid
// (ns_last_pid). A round fails when a pull ends with a conflict (a stale download lock). At the end one
// clean pull must succeed and leave no partial download. Payloads: random hostile desired states
// (control characters, huge numbers, out-of-range and old revisions, a 50 MB one), then one valid
// deploy at the next revision, which must be applied; the agent's peak RSS is read before and after.
// Prints the figures as JSON; it never writes BENCHMARKS.md.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { log, prepareBench, repoRoot, teardown } from '../bench/common.mjs';

prepareBench(fileURLToPath(import.meta.url), { packages: ['docker-registry', 'mosquitto'], rootReason: 'pulls, runs containers and sets ns_last_pid' });

const { values: opt } = parseArgs({ options: { 'pull-kills': { type: 'string', default: '12' }, payloads: { type: 'string', default: '300' }, seed: { type: 'string', default: '23' }, berth: { type: 'string' } } });
const BERTH = path.resolve(opt.berth ?? path.join(repoRoot, 'bin/berth'));
const ENV = { ...process.env, BERTH_HOST_ROOT: path.join(repoRoot, 'test/fixtures/hosts/rpi-zero-2-w') };
// A small seeded PRNG (mulberry32): the same --seed gives the same kill times and payloads.
let seed = Number(opt.seed) >>> 0;
const rand = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
};
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-chaos-'));
const { steps, run } = teardown(() => fs.rmSync(work, { recursive: true, force: true }));
const { startRegistry } = await import('../../test/helpers/services/registry.ts');
const { startMosquitto } = await import('../../test/helpers/services/mosquitto.ts');
const { pushBusyboxImage } = await import('../../test/helpers/images/build.ts');
const { default: mqtt } = await import('mqtt');
const { testFleetKey } = await import('../../test/helpers/signing.ts');
const exited = (child) => new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
const result = { seed: Number(opt.seed) };

try {
  const registry = await startRegistry();
  steps.push(() => registry.stop());
  await pushBusyboxImage(registry, 'chaos/big', 'v1', { arches: ['arm64'], bigLayerMB: 48 });
  await pushBusyboxImage(registry, 'chaos/app', 'v1', { arches: ['amd64'] });

  // --- kill -9 during pulls ---
  const root = path.join(work, 'pulls');
  const ref = `${registry.host}/chaos/big:v1`;
  const pulls = { kills: 0, pidReuses: 0, conflicts: 0, finished: 0 };
  let reusePid;
  for (let round = 0; round < Number(opt['pull-kills']); round++) {
    if (reusePid !== undefined) fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(reusePid - 1));
    const child = spawn(BERTH, ['--root', root, 'pull', '-q', ref], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    if (reusePid !== undefined && child.pid === reusePid) pulls.pidReuses++;
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 100 + rand() * 1400);
    const code = await exited(child);
    clearTimeout(timer);
    if (child.signalCode === 'SIGKILL') pulls.kills++;
    else if (code === 0) pulls.finished++;
    else if (/being downloaded by another pull/.test(stderr)) pulls.conflicts++;
    else throw new Error(`pull round ${round} failed: ${stderr.trim()}`);
    reusePid = child.signalCode === 'SIGKILL' && round % 3 === 2 ? child.pid : undefined;
    // A finished image goes again, so the next round downloads again.
    if (code === 0) spawnSync(BERTH, ['--root', root, 'rmi', ref], { env: ENV, stdio: 'ignore' });
  }
  const last = spawnSync(BERTH, ['--root', root, 'pull', '-q', ref], { env: ENV, encoding: 'utf8' });
  const partials = fs.readdirSync(path.join(root, 'content', 'ingest'));
  result.pulls = { ...pulls, converged: last.status === 0 && partials.length === 0, ...(last.status !== 0 && { error: last.stderr.trim() }) };
  log(`pulls: ${JSON.stringify(result.pulls)}`);

  // --- hostile desired states ---
  const broker = await startMosquitto();
  steps.push(() => broker.stop());
  const device = 'chaos';
  const base = `berth/v1/${device}`;
  const agentRoot = path.join(work, 'agent');
  // Signed as the fleet signs (the agent refuses anything else): the hostile part is the body.
  const fleetKey = testFleetKey();
  const agent = spawn(BERTH, ['--root', agentRoot, 'agent', '--config', fleetKey.agentConfig(work), '--broker', broker.url, '--device-id', device, '--no-governor', '--telemetry-interval', '60s'], { stdio: 'ignore' });
  steps.push(async () => {
    agent.kill('SIGTERM');
    await exited(agent);
    const ps = JSON.parse(spawnSync(BERTH, ['--root', agentRoot, 'ps', '-a', '--json'], { encoding: 'utf8' }).stdout || '[]');
    if (ps.length > 0) spawnSync(BERTH, ['--root', agentRoot, 'rm', '-f', ...ps.map((c) => c.name)], { stdio: 'ignore' });
  });
  const fleet = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'chaos-fleet' });
  steps.push(() => fleet.endAsync());
  const reported = [];
  fleet.on('message', (topic, payload) => {
    if (topic === `${base}/reported`) reported.push(JSON.parse(payload.toString()));
  });
  await fleet.subscribeAsync(`${base}/reported`, { qos: 1 });
  const waitFor = async (pred, ms, what) => {
    for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (reported.some(pred)) return;
    throw new Error(`${what}: not within ${ms} ms`);
  };
  const img = `${registry.host}/chaos/app:v1`;
  const good = (revision) => fleetKey.desired(device, { revision, services: { web: { image: img, command: ['sleep', String(3600 + revision)], stop_grace_period: '1s' } }, update: { health_window: '0s' } });
  const send = (payload) => fleet.publishAsync(`${base}/desired`, payload, { qos: 1, retain: true });
  await send(good(100));
  await waitFor((r) => r.revision === 100 && r.status === 'applied', 120_000, 'revision 100 applied');
  const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${agent.pid}/status`, 'utf8'))[1]) / 1024;
  const rssBefore = hwm();
  const nasty = ['\u0000', '\u001b[2J', '\n', ' ', '../', 'x'.repeat(5000)];
  const fields = [
    () => ({ image: img + pick(nasty) }), () => ({ user: `root${pick(nasty)}` }), () => ({ working_dir: pick(['relative', '/ok', '/a\u0000b']) }),
    () => ({ mem_limit: pick([1e308, -1, '1e308', '9'.repeat(30), 2 ** 60]) }), () => ({ pids_limit: pick([1e20, -2, 0.5]) }),
    () => ({ cpus: pick(['1'.repeat(29), 1e28, 0, -1, 'NaN']) }), () => ({ command: { $gt: 1 } }), () => ({ environment: pick([[`A=${pick(nasty)}`], 5]) }),
  ];
  const revisions = [() => 2 ** 31 - 1, () => Number.MAX_SAFE_INTEGER, () => 50, () => 100, () => -1, () => '101', () => 1e400, () => 101 + Math.floor(rand() * 1000)];
  let sent = 0;
  for (; sent < Number(opt.payloads); sent++) {
    const svc = { image: img, ...pick(fields)() };
    const rev = pick(revisions)();
    // The envelope needs a revision it can carry; the body's own may be anything.
    const signAs = Number.isInteger(rev) && rev >= 1 && rev <= 2 ** 31 - 1 ? rev : 1;
    await send(sent === 0 ? `{"revision":${2 ** 31 - 2},"services":{},"pad":"${'x'.repeat(50 * 1024 * 1024)}"}` : fleetKey.desired(device, `{"revision":${typeof rev === 'string' ? JSON.stringify(rev) : rev},"services":${JSON.stringify({ web: svc })}}`, signAs));
  }
  // Revisions it reported must not go backwards except for a valid deploy it was sent later.
  const next = 2000;
  await send(good(next));
  const applied = await waitFor((r) => r.revision === next && r.status === 'applied', 60_000, `revision ${next} applied`).then(() => 'applied', () => 'not applied within 60 s');
  const backwards = reported.slice(1).filter((r, i) => r.status === 'rejected' && r.revision < reported[i].revision).length;
  result.hostile = { payloads: sent, deployAfterwards: applied, rejectedReportedBackwards: backwards, agentPeakRssMiB: { before: +rssBefore.toFixed(1), after: +hwm().toFixed(1) } };
  log(`hostile: ${JSON.stringify(result.hostile)}`);
} finally {
  await run();
}
console.log(JSON.stringify(result, null, 2));
