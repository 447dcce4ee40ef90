// kill -9 of `berth start` while it starts a container. The monitor is detached and outlives its caller,
// so a kill after the runtime ran the container but before the record said "running" leaves a running
// container behind a record that says created (or exited, for a restart). The next berth must see that
// run as the container's current one: ps says running, start leaves it be (instead of asking the runtime
// for the id a second time: "container with given ID already exists"), stop and rm end it.
// Found in CI by test/integration/preload.test.ts (an agent killed mid-deploy).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { berthSync } from '../helpers/berth-cli.js';
import { BERTH_BIN, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

let registry: RegistryInstance | undefined;
let root: string;
let img: string;
const ENV = { BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' };
const berth = (...args: string[]) => berthSync(['--root', root, ...args], ENV);
const stateOf = (name: string): string => (JSON.parse(berth('inspect', name).stdout) as Array<{ State: { Status: string } }>)[0]!.State.Status;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'kill/busybox', 'v1');
  img = `${registry.host}/kill/busybox:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-start-kill-'));
  expect(berth('pull', '-q', img).code).toBe(0);
}, 120_000);

afterAll(async () => {
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await registry?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/**
 * Starts `berth start NAME` and kills it with SIGKILL `delayMs` after the runtime wrote the container's
 * pid (the run exists from then on; berth records it a few milliseconds later), or when it exits first.
 * Resolves with whether it was killed before it exited.
 */
async function startKilled(stateDir: string, delayMs: number): Promise<boolean> {
  const pidFile = path.join(stateDir, 'container.pid');
  fs.rmSync(pidFile, { force: true });
  const proc = spawn(BERTH_BIN, ['--root', root, 'start', 'c'], { stdio: 'ignore', env: { ...process.env, ...ENV } });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let done = false;
  void exited.then(() => (done = true));
  const watcher = fs.watch(stateDir);
  try {
    while (!done && !fs.existsSync(pidFile)) await Promise.race([new Promise((r) => watcher.once('change', r)), exited, sleep(50)]);
  } finally {
    watcher.close();
  }
  if (delayMs > 0) await sleep(delayMs);
  const killed = !done && proc.kill('SIGKILL');
  await exited;
  return killed && proc.signalCode === 'SIGKILL';
}

describe('kill -9 of berth start', () => {
  it('leaves a container the next berth sees running: start leaves it be, stop and rm end it, every round', async () => {
    expect(berth('create', '--name', 'c', '--network', 'none', '--stop-timeout', '1', img, 'sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait").code).toBe(0);
    const id = (JSON.parse(berth('inspect', 'c').stdout) as Array<{ Id: string }>)[0]!.Id;
    const stateDir = path.join(root, 'containers', id, 'state');
    fs.mkdirSync(stateDir, { recursive: true });
    let killedMidStart = 0;
    // Rounds alternate a first start (record: created) with a restart (record: exited); the delay after
    // the pid appears walks across the few milliseconds before berth records the start.
    for (let round = 0; round < 8; round++) {
      if (await startKilled(stateDir, round % 4)) killedMidStart++;
      const seen = stateOf('c');
      const running = berth('exec', 'c', 'true').code === 0;
      // What ps says is what runs: a killed start either ran the container or left it not running.
      expect(seen === 'running', `round ${round}: state ${seen}, container ${running ? 'runs' : 'does not run'}`).toBe(running);
      const again = berth('start', 'c');
      expect(again.code, `round ${round}: ${again.stderr}`).toBe(0);
      expect(stateOf('c')).toBe('running');
      expect(berth('exec', 'c', 'true').code).toBe(0);
      const stop = berth('stop', 'c');
      expect(stop.code, stop.stderr).toBe(0);
      expect(stateOf('c')).toBe('exited');
    }
    // The case under test happened at all (the kill landed before the CLI exited).
    expect(killedMidStart).toBeGreaterThan(0);
    const rm = berth('rm', 'c');
    expect(rm.code, rm.stderr).toBe(0);
    expect(fs.existsSync(path.join(root, 'containers', id))).toBe(false);
  }, 240_000);
});
