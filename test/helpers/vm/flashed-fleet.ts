// The fleet side of the flashed-card tests (test/arm/flashed-boot, test/arm/agent-upgrade), on this
// machine's loopback: mosquitto with per-device passwords and the ACL from the provisioning scripts, and
// a private registry (htpasswd) behind TLS with a certificate from the fleet CA, whose CA and pull login
// flash puts on the card. And the card itself: a Raspberry Pi OS-shaped image flashed with the real CLI
// and booted in the arm64 VM, whose only network paths are forwards from 10.0.2.100:1883 and :5000 to
// those two (qemu user networking, restrict=on: nothing else is reachable).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import type { BundleArch } from '../../../src/flash/elf.js';
import { openPiImage } from '../../../src/flash/image.js';
import { until } from '../agent-process.js';
import { runBerth } from '../berth-cli.js';
import { REPO } from '../dist.js';
import type { TestArch } from '../images/build.js';
import { recordMessages, type InboxMessage } from '../mqtt-inbox.js';
import { buildPiImage } from '../pi-image.js';
import { startMosquitto, type MosquittoInstance } from '../services/mosquitto.js';
import { startRegistry, type RegistryInstance } from '../services/registry.js';
import { testFleetKey } from '../signing.js';
import { bootDisk, type BootedDisk } from './boot-disk.js';

const run = promisify(execFile);
export const BROKER_IN_GUEST = '10.0.2.100:1883';
export const REGISTRY_IN_GUEST = '10.0.2.100:5000';
export const PULL = { username: 'fleet-pull', password: 'pull-secret' };

// Pi OS configures its network with NetworkManager; this image with systemd-networkd (which systemd's
// first-boot presets enable): DHCP on the wired port, served by qemu's user network.
const NETWORK = '[Match]\nType=ether\n\n[Network]\nDHCP=ipv4\n';

// As Raspberry Pi OS's cmdline.txt reads after its first boot (which removes the init= of the firstboot script).
const CMDLINE = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet\n';

export interface FlashedFleet {
  readonly work: string;
  readonly broker: MosquittoInstance;
  readonly registry: RegistryInstance;
  /** The loopback port of the registry's TLS front (what the guests' 10.0.2.100:5000 reaches). */
  readonly registryTlsPort: number;
  /** Every MQTT message on berth/v1/# since the start. */
  readonly inbox: InboxMessage[];
  /** Payloads of berth/v1/<id>/<suffix>, oldest first. */
  messages(id: string, suffix: string): any[];
  /** `berth fleet …` as an operator runs it (the fleet key signs). */
  fleet(args: string[]): ReturnType<typeof runBerth>;
  stop(): Promise<void>;
}

/** The fleet for `ids`, and `<work>/fleet.yaml` naming the broker and registry as the guests see them. */
export async function startFlashedFleet(ids: readonly string[], name: string): Promise<FlashedFleet> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `berth-${name}-`));
  const provision = async (script: string, args: string[]): Promise<void> => {
    await run('bash', [path.join(REPO, 'scripts', 'provision', script), ...args], { cwd: work });
  };
  await provision('device-credentials.sh', ['--operator', '--acl', 'devices/acl', ...ids]);
  const broker = await startMosquitto({ allowAnonymous: false, passwordFile: path.join(work, 'devices', 'passwd'), aclFile: path.join(work, 'devices', 'acl') });
  const registry = await startRegistry({ htpasswd: [PULL] });
  // The registry's TLS, as a fleet would run it behind a terminating proxy: a server certificate for the
  // address the devices use, from the fleet CA (the provisioning scripts' server-certificate helper).
  await provision('fleet-ca.sh', []);
  await provision('broker-cert.sh', ['--out', 'registry-tls', REGISTRY_IN_GUEST.split(':')[0]!]);
  const tlsDir = path.join(work, 'registry-tls');
  const registryTls = tls.createServer({ key: fs.readFileSync(path.join(tlsDir, 'broker.key')), cert: fs.readFileSync(path.join(tlsDir, 'broker.crt')) }, (client) => {
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
  const operator: MqttClient = await connectAsync(broker.url, { protocolVersion: 5, username: 'berth-fleet', password: fs.readFileSync(path.join(work, 'devices', 'berth-fleet.password'), 'utf8').trim() });
  const inbox: InboxMessage[] = [];
  recordMessages(operator, inbox);
  await operator.subscribeAsync('berth/v1/#', { qos: 1 });
  return {
    work, broker, registry, inbox, registryTlsPort: (registryTls.address() as net.AddressInfo).port,
    messages: (id, suffix) => inbox.filter((m) => m.topic === `berth/v1/${id}/${suffix}`).map((m) => m.payload),
    fleet: (args) => runBerth(['fleet', ...args, '--broker', broker.url, '--username', 'berth-fleet', '--password-file', path.join(work, 'devices', 'berth-fleet.password'), '--signing-key', path.join(work, 'fleet-key.key')]),
    async stop() {
      await operator.endAsync(true);
      registryTls.close();
      await Promise.all([broker.stop(), registry.stop()]);
      fs.rmSync(work, { recursive: true, force: true });
    },
  };
}

export interface CardSpec {
  readonly id: string;
  readonly bundle: BundleArch;
  readonly busybox: TestArch;
  /** The Debian systemd root under .cache/vm that stands in for Raspberry Pi OS (scripts/setup.sh). */
  readonly tree: string;
  readonly rootMiB?: number;
}

export interface FlashedCard {
  readonly image: string;
  readonly cmdline: string;
  /** berth flash's stderr. */
  readonly flashOutput: string;
}

/** Builds the Pi OS-shaped image for `spec` and flashes it for `spec.id` with the real CLI and `bundleDir`. */
export async function flashCard(f: FlashedFleet, spec: CardSpec, bundleDir: string): Promise<FlashedCard> {
  const image = await buildPiImage(path.join(f.work, `raspios-${spec.bundle}-${spec.id}.img`), {
    arch: spec.busybox, baseTree: path.join(REPO, '.cache', 'vm', spec.tree), rootMiB: spec.rootMiB ?? 640,
    bootFiles: { 'cmdline.txt': CMDLINE, 'config.txt': `arm_64bit=${spec.bundle === 'arm64' ? 1 : 0}\n` },
    customize: async (tree) => {
      const units = path.join(tree, 'etc', 'systemd', 'system');
      fs.mkdirSync(path.join(tree, 'etc', 'systemd', 'network'), { recursive: true });
      fs.writeFileSync(path.join(tree, 'etc', 'systemd', 'network', '10-wired.network'), NETWORK);
      // Unpacked, not installed: no machine-id, so systemd would prompt for locale and time zone on the
      // console. Pi OS runs its own first-boot script instead; masked, as a preinstalled image has it.
      fs.symlinkSync('/dev/null', path.join(units, 'systemd-firstboot.service'));
    },
  });
  const flashed = path.join(f.work, `${spec.id}.img`);
  const r = await runBerth(['flash', image, '--fleet', path.join(f.work, 'fleet.yaml'), '--id', spec.id, '--out', flashed, '--bundle', bundleDir]);
  if (r.code !== 0) throw new Error(`berth flash exited ${r.code}: ${r.stderr}`);
  fs.rmSync(image, { force: true });
  const cmdline = (await (await openPiImage(flashed)).boot.readFile('/cmdline.txt'))!.toString();
  return { image: flashed, cmdline, flashOutput: r.stderr };
}

/**
 * Boots a flashed card (again: a second boot of the same image is a power cycle) and waits until its
 * agent says it is online after `since` messages of its status topic. Prints the console when it does not.
 */
export async function bootCard(f: FlashedFleet, id: string, card: FlashedCard, runName: string, onlineWithinMs = 600_000): Promise<BootedDisk> {
  const since = f.messages(id, 'status').length;
  const vm = await bootDisk({
    disk: card.image, cmdline: card.cmdline, outDir: path.join(REPO, '.cache', 'vm', 'runs', runName),
    forwards: [{ guest: BROKER_IN_GUEST, hostPort: f.broker.port }, { guest: REGISTRY_IN_GUEST, hostPort: f.registryTlsPort }],
    timeoutMs: 2_400_000,
  });
  try {
    await until(() => f.messages(id, 'status').slice(since).find((s) => s?.online === true), onlineWithinMs, `${id} online`);
  } catch (err) {
    console.error(`${id}: VM console (${vm.consoleLog}):\n${vm.console().slice(-8000)}`);
    await vm.stop();
    throw err;
  }
  return vm;
}
