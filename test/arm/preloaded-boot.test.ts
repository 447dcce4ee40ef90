import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../src/flash/bundle.js';
import { openPiImage } from '../../src/flash/image.js';
import { until } from '../helpers/agent-process.js';
import { runBerth } from '../helpers/berth-cli.js';
import { REPO, requireBuilt } from '../helpers/dist.js';
import { platformString, pushBusyboxImage } from '../helpers/images/build.js';
import { recordMessages, type InboxMessage } from '../helpers/mqtt-inbox.js';
import { buildPiImage } from '../helpers/pi-image.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry } from '../helpers/services/registry.js';
import { bootDisk, type BootedDisk } from '../helpers/vm/boot-disk.js';
import { testFleetKey } from '../helpers/signing.js';

// Issue 19's proof of preloaded cards: a card flashed with `berth flash --preload compose.yaml` boots in
// the arm64 VM with the registry stopped (and never reachable from the guest) and the broker down, and
// its app runs: the agent loads the images flash put in its state root and deploys the app as revision
// 0, which the console (the journal, forwarded) shows before any broker exists. Then the broker comes
// up: the device reports revision 0 running the arm64 image, and a `berth fleet deploy` (revision 1)
// replaces it as any deploy replaces the one before. The card is built as flashed-boot.test.ts builds
// its 64-bit one; the guest's only network path is a forward to a relay here that refuses every
// connection until the broker is started.

const run = promisify(execFile);
const BROKER_IN_GUEST = '10.0.2.100:1883';
const ID = 'pi-preload-64';
const NETWORK = '[Match]\nType=ether\n\n[Network]\nDHCP=ipv4\n';
const CMDLINE = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet\n';

let work: string;
let broker: MosquittoInstance | undefined;
let relay: net.Server;
let operator: MqttClient | undefined;
let vm: BootedDisk | undefined;
let appImage: string;
let digests: Record<string, string>;
const inbox: InboxMessage[] = [];
const messages = (suffix: string): any[] => inbox.filter((m) => m.topic === `berth/v1/${ID}/${suffix}`).map((m) => m.payload);

async function provision(script: string, args: string[]): Promise<void> {
  await run('bash', [path.join(REPO, 'scripts', 'provision', script), ...args], { cwd: work });
}

function fleet(args: string[]): ReturnType<typeof runBerth> {
  return runBerth(['fleet', ...args, '--broker', broker!.url, '--username', 'berth-fleet', '--password-file', path.join(work, 'devices', 'berth-fleet.password'), '--signing-key', path.join(work, 'fleet-key.key')]);
}

/** The agent's JSON log lines as the journal forwards them to the console. */
function agentLog(): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (const m of vm?.console().matchAll(/(\{"time":"[^\n]*\})\s*$/gm) ?? []) {
    try {
      out.push(JSON.parse(m[1]!) as Record<string, any>);
    } catch {
      // a line the console cut or interleaved
    }
  }
  return out;
}

beforeAll(async () => {
  requireBuilt();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-preloaded-boot-'));
  await provision('device-credentials.sh', ['--operator', '--acl', 'devices/acl', ID]);
  testFleetKey().writePrivate(work);
  fs.writeFileSync(path.join(work, 'fleet.yaml'), [`broker: mqtt://${BROKER_IN_GUEST}`, 'insecure: true', 'signingKey: fleet-key.key', 'credentials: devices', 'telemetryInterval: 5s', ''].join('\n'));

  // The registry exists only while flash pulls: the operator's machine reaches it, the board never does.
  const registry = await startRegistry();
  try {
    const built = await pushBusyboxImage(registry, 'preload/app', 'v1', { arches: ['amd64', 'arm64', 'armhf', 'armel'] });
    digests = Object.fromEntries(built.manifests.map((m) => [platformString(m.platform), m.digest]));
    appImage = `${registry.host}/preload/app:v1`;
    const service = (say: string): string[] => [
      'services:', '  web:', `    image: ${appImage}`, `    command: ["sh", "-c", "echo ${say}; head -c 20 /proc/self/exe | od -An -tx1; exec sleep 3600"]`,
      '    mem_limit: 48m', '    stop_grace_period: 1s', '    network_mode: none', 'x-berth:', '  update:', '    health_window: 2s', '',
    ];
    fs.writeFileSync(path.join(work, 'preload.yaml'), service('preloaded-app-up').join('\n'));
    fs.writeFileSync(path.join(work, 'fleet-app.yaml'), service('fleet-app-up').join('\n'));

    const log = (l: string): void => console.log(`${ID}: ${l}`);
    const bundle = await buildBundle({ arch: 'arm64', packageRoot: REPO, log });
    const image = await buildPiImage(path.join(work, 'raspios-arm64.img'), {
      arch: 'arm64', baseTree: path.join(REPO, '.cache', 'vm', 'pios-arm64'), rootMiB: 700,
      bootFiles: { 'cmdline.txt': CMDLINE, 'config.txt': 'arm_64bit=1\n' },
      customize: async (tree) => {
        fs.mkdirSync(path.join(tree, 'etc', 'systemd', 'network'), { recursive: true });
        fs.writeFileSync(path.join(tree, 'etc', 'systemd', 'network', '10-wired.network'), NETWORK);
        fs.symlinkSync('/dev/null', path.join(tree, 'etc', 'systemd', 'system', 'systemd-firstboot.service'));
      },
    });
    const flashed = path.join(work, `${ID}.img`);
    const r = await runBerth(['--root', path.join(work, 'operator'), 'flash', image, '--fleet', path.join(work, 'fleet.yaml'), '--id', ID, '--out', flashed, '--bundle', bundle, '--preload', path.join(work, 'preload.yaml')]);
    if (r.code !== 0) throw new Error(`berth flash --preload exited ${r.code}: ${r.stderr}`);
    log(r.stderr.split('\n').find((l) => /preloading/.test(l)) ?? '');
    fs.rmSync(image);

    // Until the broker is started, every connection from the guest is refused at once.
    relay = net.createServer((client) => {
      if (!broker) return void client.destroy();
      const upstream = net.connect(Number(new URL(broker.url).port), '127.0.0.1');
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const cmdline = (await (await openPiImage(flashed)).boot.readFile('/cmdline.txt'))!.toString();
    vm = await bootDisk({
      disk: flashed, cmdline, outDir: path.join(REPO, '.cache', 'vm', 'runs', 'preloaded-arm64'),
      forwards: [{ guest: BROKER_IN_GUEST, hostPort: (relay.address() as net.AddressInfo).port }], timeoutMs: 1_500_000,
    });
  } finally {
    await registry.stop();
  }
}, 900_000);

afterAll(async () => {
  await vm?.stop();
  await operator?.endAsync(true);
  relay?.close();
  await broker?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('a card flashed with --preload runs its app on first boot with no registry and no broker', () => {
  it('the agent loads the preloaded images and deploys the app as revision 0 while the broker is down', async () => {
    try {
      await until(() => agentLog().find((l) => l.event === 'deploy' && l.revision === 0 && l.status === 'applied'), 900_000, 'revision 0 applied');
    } catch (err) {
      console.error(`${ID}: VM console (${vm!.consoleLog}):\n${vm!.console().slice(-8000)}`);
      throw err;
    }
    const lines = agentLog();
    expect(lines.find((l) => l.event === 'preload-adopted')).toMatchObject({ revision: 0, services: ['web'], images: [appImage] });
    // Offline throughout: the agent never reached the broker, and nothing was pulled.
    expect(lines.some((l) => l.event === 'broker-reconnect-scheduled')).toBe(true);
    expect(lines.some((l) => l.event === 'deploy' && l.status === 'failed')).toBe(false);
    expect(broker).toBeUndefined();
  }, 960_000);

  it('once the broker is up, the device reports revision 0 running the arm64 image it was preloaded with', async () => {
    broker = await startMosquitto({ allowAnonymous: false, passwordFile: path.join(work, 'devices', 'passwd'), aclFile: path.join(work, 'devices', 'acl') });
    operator = await connectAsync(broker.url, { protocolVersion: 5, username: 'berth-fleet', password: fs.readFileSync(path.join(work, 'devices', 'berth-fleet.password'), 'utf8').trim() });
    recordMessages(operator, inbox);
    await operator.subscribeAsync('berth/v1/#', { qos: 1 });
    const reported = await until(() => messages('reported').find((r) => r?.revision === 0 && r.status === 'applied' && r.services?.web?.state === 'running'), 300_000, 'reported revision 0');
    expect(reported.services.web).toMatchObject({ imageDigest: digests['linux/arm64'] });
    const logs = await fleet(['logs', ID, 'web', '--timeout', '120s']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/preloaded-app-up/);
    // The container's own executable: 64-bit (ELF class 2), AArch64 (machine 183 = 0xb7).
    expect(/7f\s+45\s+4c\s+46\s+0(\d)(?:\s+[0-9a-f]{2}){13}\s+([0-9a-f]{2})/.exec(logs.stdout)?.slice(1)).toEqual(['2', 'b7']);
  }, 420_000);

  it('the fleet\'s first deploy (revision 1) replaces the preloaded app', async () => {
    const r = await fleet(['deploy', path.join(work, 'fleet-app.yaml'), '--device', ID, '--timeout', '10m', '--json']);
    if (r.code !== 0) console.error(`${ID}: VM console (${vm!.consoleLog}):\n${vm!.console().slice(-6000)}`);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // fleet deploy ends on the device's applied progress; its reported state is published just after.
    await until(() => messages('reported').find((m) => m?.revision === 1 && m.status === 'applied'), 60_000, 'reported revision 1 applied');
    const logs = await fleet(['logs', ID, 'web', '--timeout', '120s']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/fleet-app-up/);
    expect(logs.stdout).not.toMatch(/preloaded-app-up/);
  }, 700_000);
});
