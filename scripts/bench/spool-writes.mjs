#!/usr/bin/env node
// Offline spool write cost on an SD-class board (issue 23 item 9): what one spooled message costs the
// disk, and what that makes a day at the SD default telemetry interval.
//
//   node scripts/bench/spool-writes.mjs [--seconds 60] [--interval 1s]
//
// Needs root and `npm run build`. Runs `bin/berth agent` on the rpi-zero-2-w fixture host (storage class
// `sd`) against a loopback port nothing listens on, so every telemetry sample goes to the spool, and
// reads the agent's /proc/PID/io (write_bytes: what reached the block layer, fsyncs included) and the
// spool's row count over --seconds. Work dir under /var/tmp (not tmpfs: tmpfs writes no blocks). Prints
// the figures; it never writes BENCHMARKS.md.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { log, repoRoot, teardown } from './common.mjs';

const { values: opt } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, interval: { type: 'string', default: '1s' } } });
const seconds = Number(opt.seconds);
if (process.getuid?.() !== 0) throw new Error('run as root: the agent runs containers');

const work = fs.mkdtempSync('/var/tmp/berth-spool-writes-');
const { steps, run } = teardown(() => fs.rmSync(work, { recursive: true, force: true }));
// A free loopback port, closed again: the agent's broker is never there.
const port = await new Promise((resolve) => {
  const srv = net.createServer().listen(0, '127.0.0.1', () => {
    const { port: p } = srv.address();
    srv.close(() => resolve(p));
  });
});
const agent = spawn(path.join(repoRoot, 'bin/berth'), ['--root', work, 'agent', '--broker', `mqtt://127.0.0.1:${port}`, '--device-id', 'spool-writes', '--telemetry-interval', opt.interval, '--no-governor'], {
  env: { ...process.env, BERTH_HOST_ROOT: path.join(repoRoot, 'test/fixtures/hosts/rpi-zero-2-w') },
  stdio: 'ignore',
});
steps.push(() => new Promise((r) => (agent.exitCode !== null ? r() : (agent.once('exit', r), agent.kill('SIGTERM')))));

const io = () => Object.fromEntries(fs.readFileSync(`/proc/${agent.pid}/io`, 'utf8').trim().split('\n').map((l) => l.split(': ')).map(([k, v]) => [k, Number(v)]));
const rows = () => {
  const db = new Database(path.join(work, 'berth.db'), { readonly: true });
  try {
    return db.prepare('SELECT count(*) AS n FROM events').get().n;
  } finally {
    db.close();
  }
};
try {
  await sleep(8000); // start-up writes (store creation, migrations) are not the spool's
  const [io0, n0] = [io(), rows()];
  log(`measuring for ${seconds} s`);
  await sleep(seconds * 1000);
  const [io1, n1] = [io(), rows()];
  const messages = n1 - n0;
  const bytes = io1.write_bytes - io0.write_bytes;
  const perMessage = bytes / messages;
  const MiB = 1024 * 1024;
  console.log(`spooled messages: ${messages} in ${seconds} s (telemetry every ${opt.interval})`);
  console.log(`disk writes: ${bytes} bytes, ${io1.syscw - io0.syscw} write syscalls; ${Math.round(perMessage)} bytes per message`);
  console.log(`at one message a minute (SD default telemetry interval): ${((perMessage * 1440) / MiB).toFixed(1)} MiB/day (sd budget: 64 MiB/day)`);
} finally {
  await run();
}
