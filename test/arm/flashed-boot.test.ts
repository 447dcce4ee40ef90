import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../src/flash/bundle.js';
import type { BundleArch } from '../../src/flash/elf.js';
import { openPiImage } from '../../src/flash/image.js';
import { until } from '../helpers/agent-process.js';
import { runBerth } from '../helpers/berth-cli.js';
import { REPO, requireBuilt } from '../helpers/dist.js';
import { platformString, pushBusyboxImage, type TestArch } from '../helpers/images/build.js';
import { recordMessages, type InboxMessage } from '../helpers/mqtt-inbox.js';
import { buildPiImage } from '../helpers/pi-image.js';
import { startMosquitto, type MosquittoInstance } from '../helpers/services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { bootDisk, type BootedDisk } from '../helpers/vm/boot-disk.js';
import { testFleetKey } from '../helpers/signing.js';

// Issue 9's last step: a card flashed by `berth flash` boots straight into a running, enrolled agent.
// For each userland a Pi runs (64-bit Raspberry Pi OS, and 32-bit on the same 64-bit kernel, as Pi OS
// ships for the Pi 3/4), the test builds a Raspberry Pi OS-shaped image around a Debian systemd root
// (scripts/setup.sh: .cache/vm/pios-*), flashes it with the real CLI and the agent bundle for that
// architecture, and boots the flashed disk in the arm64 VM: cmdline.txt from the card, its root
// partition, its systemd, which starts berth-agent.service through the enable symlink flash made.
// The fleet side runs here on loopback: mosquitto with per-device passwords and the ACL from the
// provisioning scripts, and a private registry (htpasswd) behind TLS with a certificate from the fleet
// CA, whose CA and pull login flash put on the card. The VM's only network paths are forwards from
// 10.0.2.100:1883 and :5000 to those two (qemu user networking, restrict=on: nothing else is reachable).

const run = promisify(execFile);
const BROKER_IN_GUEST = '10.0.2.100:1883';
const REGISTRY_IN_GUEST = '10.0.2.100:5000';
const PULL = { username: 'fleet-pull', password: 'pull-secret' };

interface Userland {
  readonly name: string;
  readonly bundle: BundleArch;
  readonly tree: string;
  readonly busybox: TestArch;
  readonly id: string;
  /** The image variant the board must pick. */
  readonly platform: string;
}

const USERLANDS: readonly Userland[] = [
  { name: '64-bit (arm64)', bundle: 'arm64', tree: 'pios-arm64', busybox: 'arm64', id: 'pi-boot-64', platform: 'linux/arm64' },
  { name: '32-bit (armhf)', bundle: 'arm', tree: 'pios-armhf', busybox: 'armhf', id: 'pi-boot-32', platform: 'linux/arm/v7' },
];

// Pi OS configures its network with NetworkManager; this image with systemd-networkd (which systemd's
// first-boot presets enable): DHCP on the wired port, served by qemu's user network.
const NETWORK = '[Match]\nType=ether\n\n[Network]\nDHCP=ipv4\n';

// As Raspberry Pi OS's cmdline.txt reads after its first boot (which removes the init= of the firstboot script).
const CMDLINE = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet\n';

let work: string;
let broker: MosquittoInstance;
let registry: RegistryInstance;
let registryTls: net.Server;
let digests: Record<string, string>;
let operator: MqttClient;
const inbox: InboxMessage[] = [];

async function provision(script: string, args: string[]): Promise<void> {
  await run('bash', [path.join(REPO, 'scripts', 'provision', script), ...args], { cwd: work });
}

/** The fleet side's view of one device: `berth fleet …` as an operator runs it. */
function fleet(args: string[]): ReturnType<typeof runBerth> {
  return runBerth(['fleet', ...args, '--broker', broker.url, '--username', 'berth-fleet', '--password-file', path.join(work, 'devices', 'berth-fleet.password'), '--signing-key', path.join(work, 'fleet-key.key')]);
}

beforeAll(async () => {
  requireBuilt();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-flashed-boot-'));
  await provision('device-credentials.sh', ['--operator', '--acl', 'devices/acl', ...USERLANDS.map((u) => u.id)]);
  broker = await startMosquitto({ allowAnonymous: false, passwordFile: path.join(work, 'devices', 'passwd'), aclFile: path.join(work, 'devices', 'acl') });
  registry = await startRegistry({ htpasswd: [PULL] });
  const built = await pushBusyboxImage(registry, 'fleet/app', 'v1', { arches: ['amd64', 'arm64', 'armhf', 'armel'], auth: PULL });
  digests = Object.fromEntries(built.manifests.map((m) => [platformString(m.platform), m.digest]));
  // The registry's TLS, as a fleet would run it behind a terminating proxy: a server certificate for the
  // address the devices use, from the fleet CA (the provisioning scripts' server-certificate helper).
  await provision('fleet-ca.sh', []);
  await provision('broker-cert.sh', ['--out', 'registry-tls', REGISTRY_IN_GUEST.split(':')[0]!]);
  const tlsDir = path.join(work, 'registry-tls');
  registryTls = tls.createServer({ key: fs.readFileSync(path.join(tlsDir, 'broker.key')), cert: fs.readFileSync(path.join(tlsDir, 'broker.crt')) }, (client) => {
    const upstream = net.connect(registry.port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => registryTls.listen(0, '127.0.0.1', resolve));
  fs.writeFileSync(path.join(work, 'pull.password'), `${PULL.password}\n`);
  testFleetKey().writePrivate(work);
  // insecure: plain MQTT to the host side of the VM's own user-mode network, which nothing else shares.
  fs.writeFileSync(path.join(work, 'fleet.yaml'), [
    `broker: mqtt://${BROKER_IN_GUEST}`, 'insecure: true', 'signingKey: fleet-key.key', 'credentials: devices', 'telemetryInterval: 5s', 'registries:',
    `  "${REGISTRY_IN_GUEST}": { ca: fleet-ca/ca.crt, username: ${PULL.username}, passwordFile: pull.password }`, '',
  ].join('\n'));
  fs.writeFileSync(path.join(work, 'compose.yaml'), [
    'services:', '  web:', `    image: ${REGISTRY_IN_GUEST}/fleet/app:v1`, '    command: ["sh", "-c", "head -c 20 /proc/self/exe | od -An -tx1; exec sleep 3600"]',
    '    mem_limit: 48m', '    stop_grace_period: 1s',
    // The Raspberry Pi OS images under test have no netavark: the networked arm test is issue 16's.
    '    network_mode: none', 'x-berth:', '  update:', '    health_window: 2s', '',
  ].join('\n'));
  operator = await connectAsync(broker.url, { protocolVersion: 5, username: 'berth-fleet', password: fs.readFileSync(path.join(work, 'devices', 'berth-fleet.password'), 'utf8').trim() });
  recordMessages(operator, inbox);
  await operator.subscribeAsync('berth/v1/#', { qos: 1 });
}, 120_000);

afterAll(async () => {
  await operator?.endAsync(true);
  registryTls?.close();
  await Promise.all([broker?.stop(), registry?.stop()]);
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

for (const u of USERLANDS) {
  describe(`a card flashed for a ${u.name} Raspberry Pi OS boots into an enrolled agent`, () => {
    const base = `berth/v1/${u.id}`;
    const messages = (suffix: string): any[] => inbox.filter((m) => m.topic === `${base}/${suffix}`).map((m) => m.payload);
    let vm: BootedDisk | undefined;
    let flashed: string;
    let cmdline: string;
    let flashOutput: string;

    beforeAll(async () => {
      const log = (l: string): void => console.log(`${u.id}: ${l}`);
      const bundle = await buildBundle({ arch: u.bundle, packageRoot: REPO, log });
      const image = await buildPiImage(path.join(work, `raspios-${u.bundle}.img`), {
        arch: u.busybox, baseTree: path.join(REPO, '.cache', 'vm', u.tree), rootMiB: 640,
        bootFiles: { 'cmdline.txt': CMDLINE, 'config.txt': `arm_64bit=${u.bundle === 'arm64' ? 1 : 0}\n` },
        customize: async (tree) => {
          const units = path.join(tree, 'etc', 'systemd', 'system');
          fs.mkdirSync(path.join(tree, 'etc', 'systemd', 'network'), { recursive: true });
          fs.writeFileSync(path.join(tree, 'etc', 'systemd', 'network', '10-wired.network'), NETWORK);
          // Unpacked, not installed: no machine-id, so systemd would prompt for locale and time zone on the
          // console. Pi OS runs its own first-boot script instead; masked, as a preinstalled image has it.
          fs.symlinkSync('/dev/null', path.join(units, 'systemd-firstboot.service'));
        },
      });
      flashed = path.join(work, `${u.id}.img`);
      const r = await runBerth(['flash', image, '--fleet', path.join(work, 'fleet.yaml'), '--id', u.id, '--out', flashed, '--bundle', bundle]);
      if (r.code !== 0) throw new Error(`berth flash exited ${r.code}: ${r.stderr}`);
      flashOutput = r.stderr;
      cmdline = (await (await openPiImage(flashed)).boot.readFile('/cmdline.txt'))!.toString();
      log(`booting the flashed card (cmdline.txt: ${cmdline.trim()})`);
      vm = await bootDisk({
        disk: flashed, cmdline, outDir: path.join(REPO, '.cache', 'vm', 'runs', `flashed-${u.bundle}`),
        forwards: [{ guest: BROKER_IN_GUEST, hostPort: broker.port }, { guest: REGISTRY_IN_GUEST, hostPort: (registryTls.address() as net.AddressInfo).port }],
        timeoutMs: 1_200_000,
      });
      try {
        await until(() => messages('status').find((s) => s?.online === true), 600_000, `${u.id} online`);
        await until(() => messages('telemetry')[0], 120_000, `${u.id} telemetry`);
      } catch (err) {
        console.error(`${u.id}: VM console (${vm.consoleLog}):\n${vm.console().slice(-8000)}`);
        throw err;
      }
    }, 1_200_000);

    afterAll(async () => {
      await vm?.stop();
    });

    it('boots the card: its cmdline.txt (cgroup_enable=memory once), its root partition, its systemd, the flashed host name', () => {
      // crun is on this image; netavark is not (its services run with network_mode none), which flash says.
      expect(flashOutput.split('\n').filter((l) => /warning/.test(l))).toEqual([expect.stringMatching(/has no netavark or aardvark-dns/)]);
      expect(cmdline.match(/cgroup_enable=memory/g)).toHaveLength(1);
      const c = vm!.console();
      expect(c).toMatch(/berth-vm: root \/dev\/vda2 \(PARTUUID 4e639091-02\)/);
      expect(c).toMatch(/Started berth-agent\.service/);
      expect(c).toMatch(new RegExp(`^${u.id} login:`, 'm'));
    });

    it('systemd starts berth-agent.service: the agent connects with the flashed credentials and reports', () => {
      const status = messages('status').find((s) => s?.online === true);
      expect(status.agent.version).toBe(JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version);
      const telemetry = messages('telemetry')[0];
      expect(telemetry.host.memory.totalBytes).toBeGreaterThan(0);
    });

    it('the fleet side sees the device online and reaches it with a command', async () => {
      const status = await fleet(['status', '--json']);
      expect(status.code, status.stderr).toBe(0);
      const row = (JSON.parse(status.stdout) as Array<Record<string, any>>).find((d) => d.device === u.id);
      expect(row).toMatchObject({ online: true });
      const ping = await fleet(['cmd', u.id, 'ping', '--timeout', '120s']);
      expect(ping.code, ping.stderr).toBe(0);
      expect(ping.stdout).toMatch(/pong/);
    }, 180_000);

    it(`berth fleet deploy: the device pulls the ${u.platform} variant from the private registry (flashed CA and login) and runs it`, async () => {
      const r = await fleet(['deploy', path.join(work, 'compose.yaml'), '--device', u.id, '--timeout', '10m', '--json']);
      if (r.code !== 0) console.error(`${u.id}: VM console (${vm!.consoleLog}):\n${vm!.console().slice(-6000)}`);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const reported = messages('reported').at(-1);
      expect(reported).toMatchObject({ revision: 1, status: 'applied' });
      expect(reported.services.web).toMatchObject({ state: 'running', imageDigest: digests[u.platform] });
      const logs = await fleet(['logs', u.id, 'web', '--timeout', '120s']);
      expect(logs.code, logs.stderr).toBe(0);
      // The container's own executable: ELF class (byte 4: 2 = 64-bit, 1 = 32-bit) and machine (183 = AArch64, 40 = ARM).
      const elf = /7f\s+45\s+4c\s+46\s+0(\d)(?:\s+[0-9a-f]{2}){13}\s+([0-9a-f]{2})/.exec(logs.stdout);
      expect(elf?.slice(1)).toEqual(u.bundle === 'arm64' ? ['2', 'b7'] : ['1', '28']);
    }, 700_000);
  });
}
