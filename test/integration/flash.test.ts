// berth flash end to end on a Raspberry Pi OS–shaped image built by the test (test/helpers/pi-image.ts),
// with the real arm64 agent bundle (official Node from the npm registry, better-sqlite3 and the monitor
// cross-built; cached in .cache/bundle) and credentials made by the shipped provisioning scripts. The
// results are checked with the tools, not with berth's own readers: e2fsck -fn, debugfs, mtools, sfdisk.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAgentConfig } from '../../src/agent/config.js';
import { buildBundle } from '../../src/flash/bundle.js';
import { bundleTreeHash } from '../../src/flash/install-layout.js';
import { BERTH_BIN, REPO, requireBuilt } from '../helpers/dist.js';
import { buildPiImage } from '../helpers/pi-image.js';
import { startMosquitto } from '../helpers/services/mosquitto.js';
import { testFleetKey } from '../helpers/signing.js';

const run = promisify(execFile);
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' };
const CERT_ID = 'b8:27:eb:00:00:01';

let work: string;
let bundle: string;
let image: string;
const fleetKey = testFleetKey();
let imageSha: string;
let devices: string;
let fleetFile: string;

const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Runs bin/berth; never throws on a non-zero exit. */
function berth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(BERTH_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function provision(script: string, args: string[]): Promise<void> {
  await run(path.join(REPO, 'scripts/provision', script), args, { cwd: work });
}

/** Byte offsets of the partitions, as sfdisk reads the table. */
async function partitions(img: string): Promise<{ boot: number; root: number }> {
  const { stdout } = await run('sfdisk', ['--json', img]);
  const parts = (JSON.parse(stdout) as { partitiontable: { partitions: Array<{ start: number; type: string }> } }).partitiontable.partitions;
  return { boot: parts[0]!.start * 512, root: parts[1]!.start * 512 };
}

interface Stat {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  link?: string;
}

/** An image's root file system, read with debugfs (read-only) and checked with e2fsck. */
async function rootfs(img: string): Promise<{ stat: (p: string) => Promise<Stat | undefined>; cat: (p: string) => Promise<string>; fsck: () => Promise<number> }> {
  const dev = `${img}?offset=${(await partitions(img)).root}`;
  return {
    stat: async (p) => {
      const { stdout } = await run('debugfs', ['-R', `stat ${p}`, dev]);
      const m = /Type: (\w+)\s+Mode:\s+(\d+)/.exec(stdout);
      if (!m) return undefined;
      const owner = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(stdout)!;
      const link = /Fast link dest: "(.*)"/.exec(stdout)?.[1];
      return { type: m[1]!, mode: parseInt(m[2]!, 8), uid: Number(owner[1]), gid: Number(owner[2]), ...(link !== undefined && { link }) };
    },
    cat: async (p) => (await run('debugfs', ['-R', `cat ${p}`, dev], { maxBuffer: 1 << 30 })).stdout,
    fsck: () => new Promise((resolve) => execFile('e2fsck', ['-fn', dev], (err) => resolve(err ? (typeof err.code === 'number' ? err.code : -1) : 0))),
  };
}

async function bootFile(img: string, name: string): Promise<string> {
  const { stdout } = await run('mtype', ['-i', `${img}@@${(await partitions(img)).boot}`, `::/${name}`], { env: MTOOLS_ENV });
  return stdout;
}

async function bootNames(img: string): Promise<string[]> {
  const { stdout } = await run('mdir', ['-b', '-i', `${img}@@${(await partitions(img)).boot}`, '::/'], { env: MTOOLS_ENV });
  return stdout.split('\n').filter(Boolean).map((l) => l.replace(/^::\//, ''));
}

async function agentConfigOf(img: string, dir: string): Promise<Awaited<ReturnType<typeof resolveAgentConfig>>> {
  const file = path.join(dir, `agent-${path.basename(img)}.yaml`);
  fs.writeFileSync(file, await (await rootfs(img)).cat('/etc/berth/agent.yaml'));
  return resolveAgentConfig({ config: file }, {});
}

beforeAll(async () => {
  requireBuilt();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-flash-'));
  fs.writeFileSync(path.join(work, 'ids.csv'), 'device_id,site\npi-001,hall\npi-002,roof\n');
  await provision('fleet-ca.sh', []);
  await provision('device-credentials.sh', ['--ids', 'ids.csv']);
  await provision('device-credentials.sh', ['--cert', CERT_ID, '--acl', 'devices/acl']);
  devices = path.join(work, 'devices');
  fs.writeFileSync(path.join(work, 'id.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFlHDn1xCPzWj6S1DjZ8rDlC1F9kBq3JnF3ZsCkzW7Jp operator@example\n');
  fs.writeFileSync(path.join(work, 'userconf.txt'), 'pi:$6$rBoByrWRKMY1EHFy$ho.LISnfm83CLBWBE/yqJ6Lq1TinRlxw/ImMTPcvvMuUfhQYcMmFnpFXUPowjy2br1NA0IACwF9JKugSNuHoe0\n');
  fleetFile = path.join(work, 'fleet.yaml');
  fleetKey.writePrivate(work);
  fs.writeFileSync(fleetFile, 'broker: mqtts://broker.example:8883\ncredentials: devices\ntelemetryInterval: 30s\nssh:\n  authorizedKeys: id.pub\nuserconf: userconf.txt\nsigningKey: fleet-key.key\ndeployPolicy: { devices: [/dev/ttyUSB0] }\n');
  image = await buildPiImage(path.join(work, 'raspios-arm64.img'));
  imageSha = sha(image);
  bundle = await buildBundle({ arch: 'arm64', packageRoot: REPO, log: (l) => console.log(`bundle: ${l}`) });
}, 900_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('berth flash', () => {
  it('provisions one device: bundle, config, credentials, unit enabled, cmdline, host name, SSH; the input stays byte-identical', async () => {
    const out = path.join(work, 'out', 'pi-001.img');
    fs.mkdirSync(path.dirname(out));
    const r = await berth(['flash', image, '--fleet', fleetFile, '--id', 'pi-001', '--out', out, '--bundle', bundle]);
    expect(r.stderr).not.toMatch(/error/i);
    // This image, like Raspberry Pi OS, has no crun or runc: said, not refused (the agent still enrolls).
    expect(r.stderr).toMatch(/warning: .* has no OCI runtime .*apt-get install crun/);
    // … nor netavark and aardvark-dns: bridge networking (the default) will not work until installed.
    expect(r.stderr).toMatch(/warning: .* has no netavark or aardvark-dns .*apt-get install netavark aardvark-dns iptables/);
    // … nor bash and sed, which the self-update launcher (systemd's ExecStart) runs on: Raspberry Pi OS has them.
    expect(r.stderr).toMatch(/warning: .* has no bash or sed \(in \/usr\/bin\): \/opt\/berth\/launch\/berth-launch, which systemd starts, needs them/);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`pi-001\t${out}\tpassword\n`);
    expect(fs.readdirSync(path.dirname(out))).toEqual(['pi-001.img']);
    expect(sha(image)).toBe(imageSha);

    const root = await rootfs(out);
    expect(await root.fsck()).toBe(0);
    const V = `/opt/berth/versions/${JSON.parse(fs.readFileSync(path.join(bundle, 'berth-bundle.json'), 'utf8')).berth}-${(await bundleTreeHash(bundle)).slice(0, 12)}`;
    const expectations: Array<[string, Partial<Stat>]> = [
      ['/etc/berth/agent.yaml', { type: 'regular', mode: 0o600, uid: 0, gid: 0 }],
      ['/etc/berth/ca.crt', { type: 'regular', mode: 0o644, uid: 0, gid: 0 }],
      // The self-update layout (docs/upgrade.md): the launcher outside versions/, the bundle in versions/<v>, current → it.
      ['/opt/berth/launch/berth-launch', { type: 'regular', mode: 0o755, uid: 0, gid: 0 }],
      ['/opt/berth/current', { type: 'symlink', link: V }],
      [`${V}/node/bin/node`, { type: 'regular', mode: 0o755, uid: 0, gid: 0 }],
      [`${V}/bin/berth`, { type: 'regular', mode: 0o755, uid: 0, gid: 0 }],
      [`${V}/native/build/berth-monitor`, { type: 'regular', mode: 0o755 }],
      [`${V}/node_modules/better-sqlite3/build/Release/better_sqlite3.node`, { type: 'regular', mode: 0o755 }],
      [`${V}/dist/bundle/berth.mjs`, { type: 'regular', mode: 0o644, uid: 0 }],
      // `berth agent`'s own one-file bundle (bin/berth picks it) and a validator it loads on first use.
      [`${V}/dist/bundle/agent.mjs`, { type: 'regular', mode: 0o644, uid: 0 }],
      // Its pulls' own process (`berth agent-pull`, src/agent/pull-child).
      [`${V}/dist/bundle/agent-pull.mjs`, { type: 'regular', mode: 0o644, uid: 0 }],
      [`${V}/dist/bundle/validate-desired.cjs`, { type: 'regular', mode: 0o644, uid: 0 }],
      [`${V}/board-profiles`, { type: 'directory', mode: 0o755 }],
      // podman's seccomp profile, which Raspberry Pi OS lacks (without it the agent starts no container), with its notice.
      [`${V}/share/containers/seccomp.json`, { type: 'regular', mode: 0o644, uid: 0 }],
      [`${V}/share/containers/seccomp.json.copyright`, { type: 'regular', mode: 0o644, uid: 0 }],
      ['/etc/systemd/system/berth-agent.service', { type: 'regular', mode: 0o644, uid: 0 }],
      ['/etc/systemd/system/multi-user.target.wants/berth-agent.service', { type: 'symlink', link: '/etc/systemd/system/berth-agent.service' }],
      ['/usr/local/bin/berth', { type: 'symlink', link: '/opt/berth/current/bin/berth' }],
      ['/opt/berth/bin/berth', {}],
      ['/etc/ssh/authorized_keys/pi', { type: 'regular', mode: 0o644, uid: 0 }],
      ['/etc/berth/device.key', {}],
    ];
    for (const [p, want] of expectations) {
      const got = await root.stat(p);
      // No flat bundle (the layout before the launcher) and no device key for a password device.
      if (p.endsWith('device.key') || p === '/opt/berth/bin/berth') expect(got, p).toBeUndefined();
      else expect(got, p).toMatchObject(want);
    }
    // The bundle's Node arrived whole.
    const dumped = path.join(work, 'node.dumped');
    await run('debugfs', ['-R', `dump ${V}/node/bin/node ${dumped}`, `${out}?offset=${(await partitions(out)).root}`]);
    expect(sha(dumped)).toBe(sha(path.join(bundle, 'node', 'bin', 'node')));
    await run('debugfs', ['-R', `dump ${V}/share/containers/seccomp.json ${dumped}`, `${out}?offset=${(await partitions(out)).root}`]);
    expect(sha(dumped)).toBe(sha('/usr/share/containers/seccomp.json'));
    const unit = await root.cat('/etc/systemd/system/berth-agent.service');
    expect(unit).toMatch(/^KillMode=process$/m);
    expect(unit).toMatch(/^ExecStart=\/opt\/berth\/launch\/berth-launch agent$/m);
    expect(await root.cat('/opt/berth/launch/berth-launch')).toBe(fs.readFileSync(path.join(REPO, 'scripts', 'berth-launch'), 'utf8'));
    expect(await root.cat('/etc/hostname')).toBe('pi-001\n');
    expect(await root.cat('/etc/hosts')).toMatch(/^127\.0\.1\.1\tpi-001$/m);
    expect(await root.cat('/etc/hosts')).not.toMatch(/raspberrypi/);
    expect(await root.cat('/etc/ssh/authorized_keys/pi')).toBe(fs.readFileSync(path.join(work, 'id.pub'), 'utf8'));

    const { security, ...cfg } = await agentConfigOf(out, work);
    expect(cfg).toEqual({
      broker: { url: 'mqtts://broker.example:8883', deviceId: 'pi-001', username: 'pi-001', password: fs.readFileSync(path.join(devices, 'pi-001.password'), 'utf8').trim(), caFile: '/etc/berth/ca.crt' },
      telemetryInterval: '30s',
    });
    // The fleet's public key and deploy policy (issue 18); never the private key.
    expect(security?.fleetKey?.id).toBe(fleetKey.key.publicKey.id);
    expect(security?.policy).toMatchObject({ devices: ['/dev/ttyUSB0'], privileged: false, bindPaths: [] });
    expect(await root.cat('/etc/berth/agent.yaml')).not.toMatch(/PRIVATE KEY/);
    // The image holds the device's broker password: only its owner may read it.
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(await root.cat('/etc/berth/ca.crt')).toBe(fs.readFileSync(path.join(devices, 'ca.crt'), 'utf8'));

    const cmdline = await bootFile(out, 'cmdline.txt');
    expect(cmdline.match(/cgroup_enable=memory/g)).toHaveLength(1);
    expect(cmdline.split('\n')).toHaveLength(2);
    expect(cmdline).toMatch(/^console=serial0,115200 .* rootwait .*cgroup_enable=memory\n$/);
    expect(await bootFile(out, 'userconf.txt')).toBe(fs.readFileSync(path.join(work, 'userconf.txt'), 'utf8'));
    expect(await bootNames(out)).toEqual(expect.arrayContaining(['ssh', 'config.txt']));
  }, 120_000);

  it('flashing a flashed image again patches cmdline.txt once and replaces the bundle cleanly', async () => {
    const first = path.join(work, 'out', 'pi-001.img');
    const firstSha = sha(first);
    const again = path.join(work, 'out', 'again.img');
    const r = await berth(['flash', first, '--fleet', fleetFile, '--id', 'pi-002', '--out', again, '--bundle', bundle]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(first)).toBe(firstSha);
    expect((await bootFile(again, 'cmdline.txt')).match(/cgroup_enable=memory/g)).toHaveLength(1);
    const root = await rootfs(again);
    expect(await root.fsck()).toBe(0);
    expect(await root.cat('/etc/hostname')).toBe('pi-002\n');
    expect((await agentConfigOf(again, work)).broker?.deviceId).toBe('pi-002');
    expect(await root.stat('/etc/systemd/system/multi-user.target.wants/berth-agent.service')).toMatchObject({ type: 'symlink' });
  }, 120_000);

  it('a batch from a CSV over an .img.xz: one image per device, credentials distinct, certificates 0600', async () => {
    const xz = `${image}.xz`;
    await run('xz', ['-k', '-T2', '-1', image]);
    const xzSha = sha(xz);
    fs.writeFileSync(path.join(work, 'batch.csv'), `id\npi-001\npi-002\n${CERT_ID}\n`);
    const outDir = path.join(work, 'batch');
    fs.mkdirSync(outDir);
    const r = await berth(['flash', xz, '--fleet', fleetFile, '--ids', path.join(work, 'batch.csv'), '--out-dir', outDir, '--bundle', bundle]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(xz)).toBe(xzSha);
    expect(fs.readdirSync(outDir).sort()).toEqual(['b8:27:eb:00:00:01.img', 'pi-001.img', 'pi-002.img']);
    const configs = [];
    for (const id of ['pi-001', 'pi-002', CERT_ID]) {
      const img = path.join(outDir, `${id}.img`);
      const root = await rootfs(img);
      expect(await root.fsck(), id).toBe(0);
      configs.push((await agentConfigOf(img, work)).broker!);
    }
    expect(configs[0]!.password).not.toBe(configs[1]!.password);
    expect(configs.map((c) => c.deviceId)).toEqual(['pi-001', 'pi-002', CERT_ID]);
    expect(configs[2]).toEqual({ url: 'mqtts://broker.example:8883', deviceId: CERT_ID, caFile: '/etc/berth/ca.crt', certFile: '/etc/berth/device.crt', keyFile: '/etc/berth/device.key' });
    const certRoot = await rootfs(path.join(outDir, `${CERT_ID}.img`));
    expect(await certRoot.stat('/etc/berth/device.key')).toMatchObject({ type: 'regular', mode: 0o600, uid: 0, gid: 0 });
    expect(await certRoot.stat('/etc/berth/device.crt')).toMatchObject({ type: 'regular', mode: 0o600, uid: 0, gid: 0 });
    expect(await certRoot.cat('/etc/berth/device.key')).toBe(fs.readFileSync(path.join(devices, `${CERT_ID}.key`), 'utf8'));
    expect(await certRoot.cat('/etc/hostname')).toBe('b8-27-eb-00-00-01\n');
  }, 300_000);

  it('an interrupted flash (SIGTERM) removes its temporary image', async () => {
    const outDir = fs.mkdtempSync(path.join(work, 'interrupted-'));
    const child = spawn(BERTH_BIN, ['flash', image, '--fleet', fleetFile, '--id', 'pi-001', '--out', path.join(outDir, 'x.img'), '--bundle', bundle], { stdio: 'ignore' });
    const closed = new Promise<NodeJS.Signals | null>((resolve) => child.once('close', (_code, signal) => resolve(signal)));
    let seen: string[] = [];
    for (let i = 0; i < 400 && seen.length === 0; i++) {
      await sleep(25);
      seen = fs.readdirSync(outDir);
    }
    expect(seen[0]).toMatch(/^\.x\.img\.berth-\d+-[0-9a-f]+\.tmp$/);
    child.kill('SIGTERM');
    expect(await closed).toBe('SIGTERM');
    expect(fs.readdirSync(outDir)).toEqual([]);
  }, 60_000);

  describe('refuses, leaving nothing behind', () => {
    const refuse = async (img: string, extra: string[], message: RegExp, code: number): Promise<void> => {
      const outDir = fs.mkdtempSync(path.join(work, 'refused-'));
      const r = await berth(['flash', img, '--fleet', fleetFile, '--id', 'pi-001', '--out', path.join(outDir, 'x.img'), '--bundle', bundle, ...extra]);
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(code);
      expect(fs.readdirSync(outDir)).toEqual([]);
    };

    it('an image of another architecture than the bundle', async () => {
      await refuse(await buildPiImage(path.join(work, 'armhf.img'), { arch: 'armhf', rootMiB: 32 }), [], /is an arm image but the agent bundle .* is for arm64/, 3);
    }, 120_000);

    it('an image without a root partition, and one that is not a Raspberry Pi image', async () => {
      await refuse(await buildPiImage(path.join(work, 'noroot.img'), { noRoot: true }), [], /no Linux root partition/, 3);
      await refuse(await buildPiImage(path.join(work, 'nopi.img'), { rootMiB: 32, bootFiles: { 'grub.cfg': 'x\n' } }), [], /no config.txt or cmdline.txt; not a Raspberry Pi image/, 3);
    }, 120_000);

    it('a corrupt .img.xz', async () => {
      const bad = path.join(work, 'bad.img.xz');
      fs.writeFileSync(bad, fs.readFileSync(image).subarray(0, 4096));
      await refuse(bad, [], /cannot decompress .*bad\.img\.xz: .*format not recognized/, 3);
    });

    it('an image lacking a library the bundle\'s Node links (the agent would die at exec on every boot)', async () => {
      await refuse(await buildPiImage(path.join(work, 'nolibs.img'), { rootMiB: 32, omitLibraries: ['libstdc++.so.6'] }), [], /lacks libstdc\+\+\.so\.6, which the bundle's Node .* needs/, 3);
    }, 120_000);

    it('a root partition too small for the bundle', async () => {
      await refuse(await buildPiImage(path.join(work, 'small.img'), { rootMiB: 48 }), [], /too little free space|editing the root file system failed/, 8);
    }, 120_000);

    it('a device without credentials, and an output that cannot be written', async () => {
      const r = await berth(['flash', image, '--fleet', fleetFile, '--id', 'pi-999', '--out', path.join(work, 'pi-999.img'), '--bundle', bundle]);
      expect(r.stderr).toMatch(/no credentials for device "pi-999"/);
      expect(r.code).toBe(4);
      const missing = await berth(['flash', image, '--fleet', fleetFile, '--id', 'pi-001', '--out', path.join(work, 'nope', 'x.img'), '--bundle', bundle]);
      expect(missing.stderr).toMatch(/cannot write into .*nope: ENOENT/);
      const self = await berth(['flash', image, '--fleet', fleetFile, '--id', 'pi-001', '--out', image, '--bundle', bundle]);
      expect(self.stderr).toMatch(/is the input image/);
      expect(self.code).toBe(2);
      expect(sha(image)).toBe(imageSha);
    });
  });

  it('the ACL device-credentials.sh --acl writes confines each listed device and shuts out unlisted ones', async () => {
    await provision('device-credentials.sh', ['pi-unlisted']); // credentials, but made after the ACL
    const broker = await startMosquitto({ allowAnonymous: false, passwordFile: path.join(devices, 'passwd'), aclFile: path.join(devices, 'acl') });
    const clients: MqttClient[] = [];
    const as = async (id: string): Promise<MqttClient> => {
      const c = await connectAsync(broker.url, { protocolVersion: 5, username: id, password: fs.readFileSync(path.join(devices, `${id}.password`), 'utf8').trim(), reconnectPeriod: 0 });
      clients.push(c);
      return c;
    };
    const denied = (p: Promise<unknown>): Promise<unknown> => expect(p).rejects.toMatchObject({ code: 135 });
    try {
      const a = await as('pi-001');
      await a.publishAsync('berth/v1/pi-001/reported', 'ok', { qos: 1 });
      await denied(a.publishAsync('berth/v1/pi-002/reported', 'x', { qos: 1 }));
      // Read-only on what the fleet sends: its own credential cannot deploy to the device (issue 18).
      await denied(a.publishAsync('berth/v1/pi-001/desired', '{"revision":9,"services":{}}', { qos: 1, retain: true }));
      await denied(a.publishAsync('berth/v1/pi-001/cmd/x1', '{"action":"prune"}', { qos: 1 }));
      await a.publishAsync('berth/v1/pi-001/cmd/x1/result', '{}', { qos: 1 });
      await denied((await as('pi-unlisted')).publishAsync('berth/v1/pi-unlisted/reported', 'x', { qos: 1 }));
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      await broker.stop();
    }
  });

  // The refusal logic is unit-tested on fixture trees; this is the real thing where / sits on a disk.
  const rootDisk = ((): string | undefined => {
    const majMin = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[4] === '/')?.[2];
    if (!majMin || majMin.startsWith('0:')) return undefined;
    const node = fs.realpathSync(`/sys/dev/block/${majMin}`);
    const disk = `/dev/${path.basename(fs.existsSync(path.join(node, 'partition')) ? path.dirname(node) : node)}`;
    return fs.existsSync(disk) ? disk : undefined;
  })();
  it.skipIf(rootDisk === undefined)('--device refuses the disk this system runs from, and anything not a block device', async () => {
    const r = await berth(['flash', image, '--fleet', fleetFile, '--id', 'pi-001', '--device', rootDisk!, '--bundle', bundle]);
    expect(r.stderr).toContain(`${rootDisk} holds the running system's root file system; refusing to overwrite it`);
    expect(r.code).toBe(5);
    const file = await berth(['flash', image, '--fleet', fleetFile, '--id', 'pi-001', '--device', image, '--bundle', bundle]);
    expect(file.stderr).toMatch(/is not a block device/);
    expect(file.code).toBe(3);
    expect(sha(image)).toBe(imageSha);
  });

  it('the bundle runs on arm64: berth, better-sqlite3 and koffi under qemu-user', async () => {
    const env = { ...process.env, QEMU_LD_PREFIX: '/usr/aarch64-linux-gnu' };
    const { stdout } = await run(path.join(bundle, 'bin', 'berth'), ['--version'], { env });
    expect(stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version);
    const probe = "const D=require('better-sqlite3');const k=require('koffi');console.log(process.arch, new D(':memory:').prepare('select 6*7 as x').get().x, typeof k.load)";
    const r = await run(path.join(bundle, 'node', 'bin', 'node'), ['-e', probe], { env, cwd: bundle });
    expect(r.stdout.trim()).toBe('arm64 42 function');
  }, 120_000);
});
