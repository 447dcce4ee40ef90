// Runs inside the arm64 VM under the arm64 Node (bundled by test/helpers/vm/guest.ts, importing the built
// dist/): the agent's main job on an arm64 board, the 32-bit image variants, and a 32-bit userland's
// platform choice. Records what it saw in results.json; test/arm/arm64.test.ts asserts on it.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { until } from '../../helpers/agent-process.js';
import { testFleetKey } from '../../helpers/signing.js';
import { recordMessages, type InboxMessage } from '../../helpers/mqtt-inbox.js';
import { platformString, pushBusyboxImage, tarOf } from '../../helpers/images/build.js';
import { startMosquitto, type MosquittoInstance } from '../../helpers/services/mosquitto.js';
import { startRegistry } from '../../helpers/services/registry.js';
import { berth, berthBin, env, guestMain, keyed, log, parseJson, readCg, type Results } from '../../vm/guest/lib.js';

const DEVICE = 'arm-vm';
const base = `berth/v1/${DEVICE}`;
/** The fleet's key: the agent takes only signed desired states. */
const fleetKey = testFleetKey();
const MiB = 1024 * 1024;

/** Every container berth knows, inspected, by the agent's service label (or name). */
function containers(root?: string): Record<string, any> {
  const rootArgs = root === undefined ? [] : ['--root', root];
  const list = JSON.parse(berth(...rootArgs, 'ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  const out: Record<string, any> = {};
  for (const c of list) {
    const i = parseJson(berth(...rootArgs, 'inspect', c.name).stdout);
    out[i?.Config?.Labels?.['berth.service'] ?? c.name] = i;
  }
  return out;
}

/** VmRSS, RssAnon, RssFile and VmHWM of a process, KiB. */
function memoryOf(pid: number): Record<string, number> {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Object.fromEntries(['VmRSS', 'RssAnon', 'RssFile', 'VmHWM'].map((f) => [f, Number(new RegExp(`^${f}:\\s+(\\d+) kB`, 'm').exec(status)?.[1])]));
}

/** The same for a bare idle `node` with the agent's flags (bin/berth's), once it has settled. */
async function bareNodeMemory(): Promise<Record<string, number>> {
  const p = spawn(process.execPath, ['--max-semi-space-size=1', '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 15_000));
  const m = memoryOf(p.pid!);
  p.kill();
  return m;
}

/** The cgroup v2 directory of a running container: the one under berth/ whose cgroup.procs holds its pid. */
function cgroupOf(pid: number): string | undefined {
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
  return line === undefined ? undefined : path.join('/sys/fs/cgroup', line.slice(3));
}

async function agentMainJob(results: Results, ref: string, broker: MosquittoInstance): Promise<void> {
  const fleet = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: 'fleet-arm' });
  const inbox = recordMessages(fleet);
  await fleet.subscribeAsync(`${base}/#`, { qos: 1 });
  const messages = (suffix: string): InboxMessage[] => inbox.filter((m) => m.topic === `${base}/${suffix}`);

  const agentLog = fs.openSync(path.join(env.out, 'agent.log'), 'w');
  const agent = spawn(berthBin(), ['agent', '--config', fleetKey.agentConfig(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fleet-'))), '--broker', broker.url, '--device-id', DEVICE, '--telemetry-interval', '2s', '--no-governor'], {
    stdio: ['ignore', agentLog, agentLog],
  });
  try {
    await until(() => messages('status').find((m) => m.payload?.online === true), 120_000, 'agent online');
    log('agent online');
    // web holds 8 MiB under a 48 MiB limit; greedy grows 4 MiB every 2 s past its 32 MiB limit, long after
    // the health window (TCG is slow), and must be OOM-killed by the kernel inside its own cgroup.
    // network_mode none: the VM's root filesystem has no netavark (the networked arm64 test is issue 16's).
    await fleet.publishAsync(`${base}/desired`, fleetKey.desired(DEVICE, {
      revision: 1,
      services: {
        web: { image: ref, command: ['hog', '8'], mem_limit: '48m', stop_grace_period: '1s', network_mode: 'none' },
        greedy: { image: ref, command: ['hog', '96', '4', '2000'], mem_limit: '32m', restart: 'no', stop_grace_period: '1s', network_mode: 'none' },
      },
      update: { health_window: '1s' },
    }), { qos: 1, retain: true });
    const reported = await until(() => messages('reported').find((m) => m.payload?.revision === 1 && m.payload?.status !== 'applying')?.payload, 600_000, 'revision 1 reported');
    results.set('reported', reported);
    log(`reported: ${reported.status}`);
    // berth exec into the running service: the runtime joins its namespaces from the guest's real root.
    const web = (JSON.parse(berth('ps', '--json').stdout || '[]') as Array<{ name: string }>).find((c) => c.name.startsWith('web'));
    if (web) results.set('exec', berth('exec', web.name, 'sh', '-c', 'echo exec-ok; cat /proc/1/comm'));
    const webPid = Number(containers().web?.State?.Pid ?? 0);
    const webCgroup = webPid > 0 ? cgroupOf(webPid) : undefined;
    results.set('webCgroup', webCgroup && { dir: webCgroup, memoryMax: readCg(webCgroup, 'memory.max'), controllers: readCg(webCgroup, 'cgroup.controllers') });
    // One `berth ps` per poll: every CLI start costs seconds under TCG.
    const greedyState = (): string | undefined => (JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string; state: string }>).find((c) => c.name.startsWith('greedy'))?.state;
    await until(() => greedyState() === 'exited', 180_000, 'greedy exited').catch((err: Error) => log(err.message));
    const since = Date.now();
    const telemetry = await until(() => messages('telemetry').find((m) => m.at > since), 60_000, 'telemetry after the OOM kill');
    results.set('telemetry', { count: messages('telemetry').length, last: telemetry.payload });
    // The agent's memory on arm64 under Node 22, beside a bare node: recorded for BENCHMARKS.md, not asserted.
    results.set('footprint', { agent: memoryOf(agent.pid!), bareNode: await bareNodeMemory() });
    results.set('containers', containers());
    results.set('progress', messages('progress').map((m) => m.payload));
  } finally {
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    fs.closeSync(agentLog);
    await fleet.endAsync();
  }
}

/** `berth run` of one 32-bit variant: what the container says about its own executable. */
function runVariant(ref: string, platform: string, name: string): Record<string, unknown> {
  // The first 20 bytes of the running busybox: ELF class (byte 4) and e_machine (bytes 18-19).
  const r = berth('run', '--name', name, '--network', 'none', '--platform', platform, ref, 'sh', '-c', 'head -c 20 /proc/self/exe | od -An -tx1; uname -m');
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, inspect: parseJson(berth('inspect', name).stdout) };
}

/**
 * The 32-bit userland of a Pi on 32-bit Raspberry Pi OS with a 64-bit kernel: the armv7l Node, with the
 * armhf better-sqlite3 in place (in a private mount namespace), in its own state root.
 */
function berth32(root: string, ...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const sqlite = path.join(env.repo, 'node_modules', 'better-sqlite3', 'build');
  const script = 'mount -o bind "$ARM32_SQLITE_BUILD" "$1" && shift && PATH="${ARM32_NODE%/*}:$PATH" exec "$@"';
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', sqlite, berthBin(), '--root', root, ...args], { encoding: 'utf8', timeout: 300_000 });
  log(`berth32 ${args.join(' ')} → ${r.status}${r.status !== 0 ? `: ${r.stderr}` : ''}`);
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

await guestMain(async (results) => {
  results.set('node', { arch: process.arch, version: process.version, machine: os.machine() });
  results.set('board', parseJson(berth('board', '--json').stdout));
  const [registry, broker] = await Promise.all([startRegistry(), startMosquitto()]);
  // hog (cross-compiled, static arm64) rides on every platform's image; only the arm64 one runs it.
  const hog = await tarOf([{ name: 'bin/hog', content: fs.readFileSync(path.join(env.out, 'hog')), mode: 0o755 }]);
  const built = await pushBusyboxImage(registry, 'fleet/app', 'v1', { arches: ['amd64', 'arm64', 'armhf', 'armel'], extraLayers: [hog] });
  const ref = `${registry.host}/fleet/app:v1`;
  results.set('image', { ref, digests: Object.fromEntries(built.manifests.map((m) => [platformString(m.platform), m.digest])) });
  log('image pushed');

  await agentMainJob(results, ref, broker);

  results.set('v7', runVariant(ref, 'linux/arm/v7', 'v7'));
  results.set('v6', runVariant(ref, 'linux/arm/v6', 'v6'));
  results.set('binfmt', fs.existsSync('/proc/sys/fs/binfmt_misc/register') ? fs.readdirSync('/proc/sys/fs/binfmt_misc') : 'not mounted');

  const root32 = '/var/lib/berth32';
  fs.mkdirSync(root32, { recursive: true });
  spawnSync('mount', ['-t', 'tmpfs', '-o', 'mode=0700', 'tmpfs', root32]);
  const board32 = berth32(root32, 'board', '--json');
  const pull32 = berth32(root32, 'pull', '-q', ref);
  results.set('userland32', {
    board: parseJson(board32.stdout),
    pull: pull32,
    images: JSON.parse(berth32(root32, 'images', '--json').stdout || '[]') as unknown,
  });
  results.set('memory', { memTotalMiB: Math.round(os.totalmem() / MiB), parentEvents: keyed(readCg('/sys/fs/cgroup/berth', 'memory.events')) });
  log('done');
});
