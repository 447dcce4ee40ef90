import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { versionName } from '../../src/agent/upgrade/upgrader.js';
import { buildBundle, readBundle } from '../../src/flash/bundle.js';
import { flashedVersionName } from '../../src/flash/install-layout.js';
import { authEntry } from '../../src/image/registry/credentials.js';
import { until } from '../helpers/agent-process.js';
import { REPO, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import type { BootedDisk } from '../helpers/vm/boot-disk.js';
import { bootCard, flashCard, PULL, REGISTRY_IN_GUEST, startFlashedFleet, type FlashedCard, type FlashedFleet } from '../helpers/vm/flashed-fleet.js';

// Issue 20's proof on a card: `berth flash` lays out the launcher, a version and `current`; the card
// boots in the arm64 VM (its own systemd starts launch/berth-launch) running v1 with a container.
// - `berth fleet upgrade` to v2, a real agent bundle pushed with scripts/bundle-push.mjs to the test's
//   registry: the device reports v2 installed, and its container is the same process throughout;
// - a broken v3 (bin/berth exits 3 at start): the launcher rolls back to v2 by itself, reported with
//   the cause;
// - v4, with the VM's power cut during the switch (the new version's first start): after the next boot the
//   agent runs a consistent version (v4 confirmed, or v2 after a rollback), and says which.
// Fleet side on loopback (test/helpers/vm/flashed-fleet.ts); the VM reaches only the broker and registry.

const run = promisify(execFile);
const ID = 'pi-upgrade';
const TAGS = { v2: 'up2', v3: 'up3', v4: 'up4' } as const;
const POWER_CUT_AFTER_MS = 10_000;
type Tag = keyof typeof TAGS;

let f: FlashedFleet;
let card: FlashedCard;
let vm: BootedDisk | undefined;
let v1: string;
let base: string;
const digests = {} as Record<Tag, string>;
const messages = (suffix: string): any[] => f.messages(ID, suffix);
const reported = (): any => messages('reported').at(-1);

/** A copy of the flashed bundle that is a working agent under another version number. */
function realVersion(bundle: string, dir: string, version: string): string {
  fs.cpSync(bundle, dir, { recursive: true, verbatimSymlinks: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...pkg, version }));
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'berth-bundle.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'berth-bundle.json'), JSON.stringify({ ...manifest, berth: version }));
  return dir;
}

/** A bundle whose agent exits with status 3 at once: what a bad release looks like at its first start. */
function brokenVersion(bundle: string, dir: string, version: string): string {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(bundle, 'berth-bundle.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'berth-bundle.json'), JSON.stringify({ ...manifest, berth: version }));
  fs.writeFileSync(path.join(dir, 'bin', 'berth'), '#!/bin/sh\necho "broken agent $*" >&2\nexit 3\n', { mode: 0o755 });
  return dir;
}

/** Pushes a bundle directory as the linux/arm64 entry of an index, as an operator does; returns the index digest. */
async function push(tag: string, dir: string, pushRoot: string): Promise<string> {
  const r = await run(process.execPath, [path.join(REPO, 'scripts', 'bundle-push.mjs'), `${f.registry.host}/berth/agent:${tag}`, '--dir', `linux/arm64=${dir}`, '--root', pushRoot]);
  const digest = /@(sha256:[0-9a-f]{64})\s*$/.exec(r.stdout)?.[1];
  if (!digest) throw new Error(`bundle-push printed no digest: ${r.stdout} ${r.stderr}`);
  return digest;
}

/** `fleet upgrade` by digest (the host cannot resolve 10.0.2.100's tags; devices pull by digest anyway). */
function upgrade(tag: Tag, timeout = '15m'): ReturnType<FlashedFleet['fleet']> {
  return f.fleet(['upgrade', `${REGISTRY_IN_GUEST}/berth/agent@${digests[tag]}`, '--device', ID, '--timeout', timeout, '--json']);
}

/**
 * The container's init (pid 1 in its namespace) prints its start time in clock ticks since boot (/proc
 * stat field 22: the kernel's, the same from any namespace) every 2 s. `$$` is compose's escaped `$`.
 */
const WORKLOAD = 'echo started; while :; do echo "alive $$(cut -d\' \' -f22 /proc/1/stat)"; sleep 2; done';

async function aliveLines(): Promise<string[]> {
  const logs = await f.fleet(['logs', ID, 'web', '--tail', '10000', '--timeout', '120s']);
  if (logs.code !== 0) throw new Error(`fleet logs: ${logs.stderr}`);
  return logs.stdout.split('\n').filter((l) => /^(alive \d+|started)$/.test(l.trim())).map((l) => l.trim());
}

/** The container's start ticks, after `after` alive lines are in its log: one process, never restarted. */
async function workloadStart(after = 0): Promise<{ ticks: string; lines: string[] }> {
  const deadline = Date.now() + 120_000;
  let lines = await aliveLines();
  while (lines.length <= after + 1) {
    if (Date.now() > deadline) throw new Error(`no new line from the container within 120 s:\n${lines.join('\n')}`);
    await sleep(3000);
    lines = await aliveLines();
  }
  expect(lines.filter((l) => l === 'started'), lines.join('\n')).toHaveLength(1);
  const ticks = new Set(lines.filter((l) => l.startsWith('alive')).map((l) => l.split(' ')[1]));
  expect(ticks.size, lines.join('\n')).toBe(1);
  return { ticks: [...ticks][0]!, lines };
}

function showConsole(): void {
  if (vm) console.error(`${ID}: VM console (${vm.consoleLog}):\n${vm.console().slice(-10000)}`);
}

beforeAll(async () => {
  requireBuilt();
  f = await startFlashedFleet([ID], 'agent-upgrade');
  await pushBusyboxImage(f.registry, 'fleet/app', 'v1', { arches: ['arm64'], auth: PULL });
  fs.writeFileSync(path.join(f.work, 'compose.yaml'), [
    'services:', '  web:', `    image: ${REGISTRY_IN_GUEST}/fleet/app:v1`, `    command: ${JSON.stringify(['sh', '-c', WORKLOAD])}`,
    '    mem_limit: 48m', '    stop_grace_period: 1s', '    network_mode: none', 'x-berth:', '  update:', '    health_window: 2s', '',
  ].join('\n'));
  const bundle = await buildBundle({ arch: 'arm64', packageRoot: REPO, log: (l) => console.log(`bundle: ${l}`) });
  base = (await readBundle(bundle)).berth;
  v1 = await flashedVersionName(bundle, await readBundle(bundle));
  // The operator's login for pushing: berth's credential file in a state root of its own.
  const pushRoot = path.join(f.work, 'push-root');
  fs.mkdirSync(pushRoot);
  fs.writeFileSync(path.join(pushRoot, 'auth.json'), JSON.stringify({ auths: { [f.registry.host]: authEntry(PULL) } }));
  const dirs: Record<Tag, string> = {
    v2: realVersion(bundle, path.join(f.work, 'v2'), `${base}-${TAGS.v2}`),
    v3: brokenVersion(bundle, path.join(f.work, 'v3'), `${base}-${TAGS.v3}`),
    v4: realVersion(bundle, path.join(f.work, 'v4'), `${base}-${TAGS.v4}`),
  };
  for (const t of Object.keys(TAGS) as Tag[]) digests[t] = await push(TAGS[t], dirs[t], pushRoot);
  // Room for three versions side by side and a download: 1.25 GiB root, as a small card has several times.
  card = await flashCard(f, { id: ID, bundle: 'arm64', busybox: 'arm64', tree: 'pios-arm64', rootMiB: 1280 }, bundle);
  vm = await bootCard(f, ID, card, 'agent-upgrade');
}, 1_500_000);

afterAll(async () => {
  await vm?.stop();
  await f?.stop();
});

const name = (t: Tag): string => versionName(`${base}-${TAGS[t]}`, digests[t]);

describe('a flashed card updates its agent by itself (issue 20)', () => {
  let ticks: string;
  let seen = 0;

  it('the card boots the flashed version through the launcher and runs a container', async () => {
    expect(vm!.console()).toMatch(/Started berth-agent\.service/);
    await until(() => reported()?.agent?.installed, 120_000, 'a report naming the installed version');
    expect(reported().agent).toMatchObject({ version: base, installed: v1 });
    const r = await f.fleet(['deploy', path.join(f.work, 'compose.yaml'), '--device', ID, '--timeout', '10m', '--json']);
    if (r.code !== 0) showConsole();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const w = await workloadStart();
    ticks = w.ticks;
    seen = w.lines.length;
  }, 900_000);

  it('fleet upgrade to v2: reported installed, confirmed, and the container is the same process', async () => {
    const r = await upgrade('v2');
    if (r.code !== 0) showConsole();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).devices).toMatchObject([{ device: ID, outcome: 'applied' }]);
    expect(reported().agent).toMatchObject({ version: `${base}-${TAGS.v2}`, installed: name('v2'), previous: v1, upgrade: { state: 'upgraded', digest: digests.v2 } });
    expect(reported().services.web).toMatchObject({ state: 'running', restarts: 0 });
    const w = await workloadStart(seen);
    expect(w.ticks).toBe(ticks);
    seen = w.lines.length;
  }, 1_200_000);

  it('a broken v3 (exits at start) is rolled back to v2 by the card itself, reported with its cause', async () => {
    const r = await upgrade('v3');
    expect(JSON.parse(r.stdout).devices, r.stderr).toMatchObject([{ device: ID, outcome: 'rolled-back' }]);
    expect(reported().agent).toMatchObject({
      version: `${base}-${TAGS.v2}`, installed: name('v2'),
      upgrade: { state: 'rolled-back', digest: digests.v3, cause: expect.stringMatching(/exited with status 3 before it confirmed/) },
    });
    const w = await workloadStart(seen);
    expect(w.ticks).toBe(ticks);
  }, 1_200_000);

  it('power cut during the switch to v4: the next boot runs v4 confirmed or v2 rolled back, never a broken state', async () => {
    const since = messages('status').length;
    const up = upgrade('v4', '30m');
    // The old agent switched `current` and stops (its last word: offline); systemd starts the launcher
    // 5 s later (RestartSec) and v4 takes some 20 s to start under emulation: 10 s after the offline
    // lands in v4's first start, before it can confirm.
    await until(() => messages('status').slice(since).find((s) => s?.online === false), 900_000, 'the old agent going offline after the switch');
    await sleep(POWER_CUT_AFTER_MS);
    // The power goes: qemu is killed, the guest's unwritten pages are lost as on a board.
    await vm!.stop();
    vm = await bootCard(f, ID, card, 'agent-upgrade-after-power-cut');
    const r = await up;
    const outcome = JSON.parse(r.stdout).devices[0]?.outcome;
    const agent = reported().agent;
    console.log(`after the power cut: outcome ${outcome}, installed ${agent.installed}, upgrade ${JSON.stringify(agent.upgrade)}`);
    if (agent.installed === name('v4')) {
      expect(outcome).toBe('applied');
      expect(agent).toMatchObject({ version: `${base}-${TAGS.v4}`, previous: name('v2'), upgrade: { state: 'upgraded', digest: digests.v4 } });
    } else {
      // The cut landed during v4's trial: its second start is the launcher's cue to go back.
      expect(outcome).toBe('rolled-back');
      expect(agent).toMatchObject({ version: `${base}-${TAGS.v2}`, installed: name('v2'), upgrade: { state: 'rolled-back', digest: digests.v4, cause: expect.stringMatching(/did not confirm/) } });
    }
    // The agent runs its app again after the boot (a new process: the board restarted).
    await until(() => reported()?.services?.web?.state === 'running' || undefined, 300_000, 'web running after the boot');
  }, 2_400_000);
});
