import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readAgentConfig, resolveAgentConfig } from '../../src/agent/config.js';
import { bundleArchOf, elfDependencies, parseElfHeader } from '../../src/flash/elf.js';
import { readFleetFile } from '../../src/fleet/fleet-file.js';
import { loadFleet, parseDeviceCsv, type Fleet } from '../../src/flash/fleet.js';
import { parseMbr } from '../../src/flash/mbr.js';
import { agentUnit, agentYaml, commonEntries, hostnameFor, patchCmdline, patchHosts } from '../../src/flash/payload.js';
import { CredentialStore } from '../../src/image/registry/credentials.js';
import { busyboxBinary } from '../helpers/images/build.js';
import { testFleetKey } from '../helpers/signing.js';
import { DEFAULT_DEPLOY_POLICY } from '../../src/agent/policy.js';

const dirs: string[] = [];
const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-flash-unit-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function mbr(entries: Array<{ type: number; start: number; count: number; boot?: boolean }>): Buffer {
  const b = Buffer.alloc(512);
  entries.forEach((e, i) => {
    const o = 446 + 16 * i;
    b[o] = e.boot ? 0x80 : 0;
    b[o + 4] = e.type;
    b.writeUInt32LE(e.start, o + 8);
    b.writeUInt32LE(e.count, o + 12);
  });
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

describe('MBR', () => {
  it('reads primary partitions as byte ranges, skipping empty entries', () => {
    const parts = parseMbr(mbr([{ type: 0x0c, start: 16384, count: 1048576 }, { type: 0, start: 0, count: 0 }, { type: 0x83, start: 1064960, count: 4000000 }]));
    expect(parts).toEqual([
      { number: 1, type: 0x0c, bootable: false, offset: 16384 * 512, size: 1048576 * 512 },
      { number: 3, type: 0x83, bootable: false, offset: 1064960 * 512, size: 4000000 * 512 },
    ]);
  });

  it('refuses a sector without the signature and a GPT disk', () => {
    const noSig = mbr([{ type: 0x0c, start: 1, count: 1 }]);
    noSig[511] = 0;
    expect(() => parseMbr(noSig)).toThrow(/no MBR partition table/);
    expect(() => parseMbr(mbr([{ type: 0xee, start: 1, count: 100 }]))).toThrow(/GPT/);
  });
});

describe('ELF architecture', () => {
  const header = (cls: 1 | 2, machine: number, flags = 0): Buffer => {
    const b = Buffer.alloc(64);
    b.writeUInt32BE(0x7f454c46, 0);
    b[4] = cls;
    b[5] = 1;
    b.writeUInt16LE(machine, 18);
    b.writeUInt32LE(flags, cls === 1 ? 36 : 48);
    return b;
  };
  it('maps aarch64 to arm64, hard-float 32-bit ARM to arm and soft-float (armel) to armv6; nothing else', () => {
    expect(bundleArchOf(parseElfHeader(header(2, 0xb7))!)).toBe('arm64');
    expect(bundleArchOf(parseElfHeader(header(1, 0x28, 0x05000400))!)).toBe('arm');
    expect(bundleArchOf(parseElfHeader(header(1, 0x28, 0x05000200))!)).toBe('armv6');
    expect(bundleArchOf(parseElfHeader(header(2, 0x3e))!)).toBeUndefined();
    expect(parseElfHeader(Buffer.from('#!/bin/sh\n'.padEnd(64)))).toBeUndefined();
  });
});

describe('boot and root file edits', () => {
  it('adds cgroup_enable=memory to cmdline.txt exactly once, keeping one line', () => {
    const once = patchCmdline('console=tty1 root=PARTUUID=1-02 rootwait\n');
    expect(once).toBe('console=tty1 root=PARTUUID=1-02 rootwait cgroup_enable=memory\n');
    expect(patchCmdline(once)).toBe(once);
    expect(patchCmdline('a cgroup_enable=memory b cgroup_enable=memory')).toBe('a b cgroup_enable=memory\n');
    expect(() => patchCmdline('\n')).toThrow(/empty/);
  });

  it('host names from device ids; /etc/hosts gets its 127.0.1.1 line replaced or added', () => {
    expect(hostnameFor('pi-001')).toBe('pi-001');
    expect(hostnameFor('b8:27:eb:00:00:01')).toBe('b8-27-eb-00-00-01');
    expect(hostnameFor('a_b.c')).toBe('a-b.c');
    expect(patchHosts('127.0.0.1\tlocalhost\n127.0.1.1\t\traspberrypi\n', 'pi-1')).toBe('127.0.0.1\tlocalhost\n127.0.1.1\tpi-1\n');
    expect(patchHosts('127.0.0.1 localhost\n', 'pi-1')).toBe('127.0.0.1 localhost\n127.0.1.1\tpi-1\n');
  });

  it('the unit keeps KillMode=process and starts the launcher under /opt/berth, also from a pre-launcher unit', () => {
    const template = fs.readFileSync(new URL('../../scripts/systemd/berth-agent.service', import.meta.url), 'utf8');
    const unit = agentUnit(template);
    expect(unit).toMatch(/^ExecStart=\/opt\/berth\/launch\/berth-launch agent$/m);
    // A card flashed before the launcher: its unit started the bundle directly (the migration rewrites it).
    const flat = template.replace(/^ExecStart=.*$/m, 'ExecStart=/opt/berth/bin/berth agent');
    expect(agentUnit(flat)).toBe(unit);
    expect(unit).toMatch(/^KillMode=process$/m);
    expect(unit).toMatch(/^WantedBy=multi-user.target$/m);
    expect(() => agentUnit(template.replace('KillMode=process', 'KillMode=control-group'))).toThrow(/KillMode/);
  });
});

describe('agent.yaml', () => {
  const fleetKey = testFleetKey().key.publicKey;
  const fleet: Fleet = { file: 'f.yaml', broker: 'mqtts://broker.example:8883', credentialsDir: '/x', ca: '/x/ca.crt', telemetryInterval: '15s', fleetKey };

  it('a password device: what resolveAgentConfig reads back, the fleet key and deploy policy included', async () => {
    const file = path.join(tmp(), 'agent.yaml');
    fs.writeFileSync(file, agentYaml({ ...fleet, deployPolicy: { devices: ['/dev/ttyUSB0'], hostNetwork: true } }, 'pi-001', { kind: 'password', password: 'Ab-_0"x:y#z' }));
    const { security, ...rest } = await resolveAgentConfig({ config: file }, {});
    expect(rest).toEqual({
      broker: { url: 'mqtts://broker.example:8883', deviceId: 'pi-001', username: 'pi-001', password: 'Ab-_0"x:y#z', caFile: '/etc/berth/ca.crt' },
      telemetryInterval: '15s',
    });
    expect(security?.fleetKey?.id).toBe(fleetKey.id);
    expect(security).toMatchObject({ allowUnsigned: false, policy: { ...DEFAULT_DEPLOY_POLICY, devices: ['/dev/ttyUSB0'], hostNetwork: true } });
  });

  it('a certificate device (id with colons): cert and key, no password', async () => {
    const file = path.join(tmp(), 'agent.yaml');
    fs.writeFileSync(file, agentYaml({ ...fleet, telemetryInterval: undefined } as Fleet, 'b8:27:eb:00:00:01', { kind: 'cert', cert: Buffer.from('c'), key: Buffer.from('k') }));
    expect(await resolveAgentConfig({ config: file }, {})).toMatchObject({
      broker: { url: 'mqtts://broker.example:8883', deviceId: 'b8:27:eb:00:00:01', caFile: '/etc/berth/ca.crt', certFile: '/etc/berth/device.crt', keyFile: '/etc/berth/device.key' },
    });
  });

  it('every agent.yaml berth flash writes passes the agent config schema, key for key', async () => {
    const fleets: Fleet[] = [fleet, { file: 'f.yaml', broker: 'mqtt://10.0.0.1:1883', credentialsDir: '/x', insecure: true, allowUnsigned: true, deployPolicy: { bindPaths: ['/srv'], capabilities: ['CAP_NET_ADMIN'] } }];
    const creds = [{ kind: 'password', password: 'p: "#\'\\ \u00e9' }, { kind: 'cert', cert: Buffer.from('c'), key: Buffer.from('k') }] as const;
    for (const f of fleets) {
      for (const c of creds) {
        for (const id of ['pi-001', 'b8:27:eb:00:00:01', 'a.b_c']) {
          const file = path.join(tmp(), 'agent.yaml');
          fs.writeFileSync(file, agentYaml(f, id, c));
          const read = await readAgentConfig(file);
          expect(read, `${f.broker} ${c.kind} ${id}`).toEqual({
            broker: f.broker, deviceId: id,
            ...(c.kind === 'password' ? { username: id, password: c.password } : { cert: '/etc/berth/device.crt', key: '/etc/berth/device.key' }),
            ...(f.ca !== undefined && { ca: '/etc/berth/ca.crt' }), ...(f.telemetryInterval !== undefined && { telemetryInterval: f.telemetryInterval }),
            ...(f.fleetKey !== undefined && { fleetKey: f.fleetKey.base64 }), ...(f.allowUnsigned && { allowUnsigned: true }), ...(f.insecure && { insecure: true }),
            ...(f.deployPolicy !== undefined && { deployPolicy: f.deployPolicy }),
          });
        }
      }
    }
  });
});

describe('ELF dependencies', () => {
  const readerOf = (buf: Buffer) => async (offset: number, len: number): Promise<Buffer> => buf.subarray(offset, offset + len);

  it('reads the interpreter and DT_NEEDED libraries of a dynamic executable (this Node), none of a static one', async () => {
    const node = await elfDependencies(readerOf(fs.readFileSync(process.execPath)));
    expect(node?.interpreter).toMatch(/^\/lib(64)?\/ld-linux/);
    expect(node?.needed).toEqual(expect.arrayContaining(['libc.so.6', 'libstdc++.so.6']));
    expect(await elfDependencies(readerOf(await busyboxBinary('arm64')))).toEqual({ needed: [] }); // Debian's busybox-static
    expect(await elfDependencies(readerOf(Buffer.from('#!/bin/sh\necho not ELF\n'.padEnd(64))))).toBeUndefined();
  });
});

/** A fleet signing key in `dir` (fleet-key.key), as berth fleet keygen writes it; returns the fleet-file line. */
const keyLine = (dir: string): string => {
  testFleetKey().writePrivate(dir);
  return 'signingKey: fleet-key.key\n';
};

describe('fleet file and device list', () => {
  it('resolves paths against the fleet file and defaults the CA to the credentials directory', async () => {
    const d = tmp();
    fs.mkdirSync(path.join(d, 'devices'));
    fs.writeFileSync(path.join(d, 'devices', 'ca.crt'), 'x');
    fs.writeFileSync(path.join(d, 'fleet.yaml'), `broker: mqtts://b:8883\ncredentials: devices\ntelemetryInterval: 20\nssh:\n  authorizedKeys: id.pub\n${keyLine(d)}`);
    const f = await loadFleet(path.join(d, 'fleet.yaml'));
    expect(f).toMatchObject({ broker: 'mqtts://b:8883', credentialsDir: path.join(d, 'devices'), ca: path.join(d, 'devices', 'ca.crt'), telemetryInterval: '20s', ssh: { authorizedKeys: path.join(d, 'id.pub'), user: 'pi' } });
  });

  it('one fleet file serves berth flash and berth fleet (devices and groups beside the provisioning keys)', async () => {
    const d = tmp();
    fs.writeFileSync(path.join(d, 'fleet.yaml'), `broker: mqtts://b:8883\ncredentials: devices\ndevices:\n  pi-1: { groups: [lab] }\ngroups:\n  lab: [pi-2]\n${keyLine(d)}`);
    expect(await loadFleet(path.join(d, 'fleet.yaml'))).toMatchObject({ broker: 'mqtts://b:8883', credentialsDir: path.join(d, 'devices') });
    expect(await readFleetFile(path.join(d, 'fleet.yaml'))).toMatchObject({ broker: 'mqtts://b:8883', devices: { 'pi-1': { groups: ['lab'] } }, groups: { lab: ['pi-2'] } });
  });

  it('says what is wrong in a fleet file', async () => {
    const d = tmp();
    const write = (text: string): string => {
      fs.writeFileSync(path.join(d, 'f.yaml'), text);
      return path.join(d, 'f.yaml');
    };
    await expect(loadFleet(write('credentials: x\n'))).rejects.toThrow(/broker is required/);
    await expect(loadFleet(write('broker: http://x\ncredentials: x\n'))).rejects.toThrow(/not an mqtt/);
    await expect(loadFleet(write('broker: wss://x\ncredentials: x\n'))).rejects.toThrow(/not an mqtt/); // the agent cannot use it
    await expect(loadFleet(write('broker: mqtt://x\ncredentials: x\ngroups:\n  "bad group!": []\n'))).rejects.toThrow(/fleet file .* is invalid/);
    await expect(loadFleet(write('broker: mqtt://x\ncredentials: x\nbrokr: 1\n'))).rejects.toThrow(/brokr: unknown key/);
    await expect(loadFleet(write('broker: mqtt://x\n'))).rejects.toThrow(/credentials is required/);
    await expect(loadFleet(write('broker: mqtt://x\ncredentials: x\nca: nope.crt\n'))).rejects.toThrow(/nope.crt does not exist/);
    await expect(loadFleet(path.join(d, 'missing.yaml'))).rejects.toMatchObject({ category: 'notFound' });
    // Issue 18: the fleet key is required, plain MQTT to another machine only when said so, the policy as agent.yaml takes it.
    await expect(loadFleet(write('broker: mqtts://x\ncredentials: x\n'))).rejects.toThrow(/signingKey is required/);
    const key = keyLine(d);
    await expect(loadFleet(write('broker: mqtts://x\ncredentials: x\nsigningKey: nope.key\n'))).rejects.toThrow(/signingKey .*nope.key: ENOENT/);
    await expect(loadFleet(write(`broker: mqtt://x\ncredentials: x\n${key}`))).rejects.toThrow(/broker mqtt:\/\/x is plain MQTT.*set insecure: true/);
    expect(await loadFleet(write(`broker: mqtt://x\ncredentials: x\n${key}insecure: true\n`))).toMatchObject({ insecure: true });
    expect(await loadFleet(write(`broker: mqtt://127.0.0.1:1883\ncredentials: x\n${key}`))).toMatchObject({ broker: 'mqtt://127.0.0.1:1883' });
    await expect(loadFleet(write(`broker: mqtts://x\ncredentials: x\n${key}deployPolicy: { devices: [ttyUSB0] }\n`))).rejects.toThrow(/deployPolicy.devices\[0\]: must match pattern/);
    await expect(loadFleet(write(`broker: mqtts://x\ncredentials: x\n${key}deployPolicy: { root: true }\n`))).rejects.toThrow(/deployPolicy\.root: unknown key/);
    expect(await loadFleet(write('broker: mqtts://x\ncredentials: x\nallowUnsigned: true\n'))).toMatchObject({ allowUnsigned: true });
  });

  it('private registries: the CA where the registry client looks (certs.d) and the login in the agent\'s auth.json', async () => {
    const d = tmp();
    fs.writeFileSync(path.join(d, 'reg-ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    fs.writeFileSync(path.join(d, 'pull.password'), 's3cret:with colon\n');
    const key = keyLine(d);
    fs.writeFileSync(path.join(d, 'fleet.yaml'), `broker: mqtts://b\ncredentials: devices\n${key}registries:\n  Registry.Example:5000: { ca: reg-ca.crt, username: fleet-pull, passwordFile: pull.password }\n  mirror.example: { ca: reg-ca.crt }\n`);
    const fleet = await loadFleet(path.join(d, 'fleet.yaml'));
    expect(fleet.registries).toEqual([
      { registry: 'registry.example:5000', ca: path.join(d, 'reg-ca.crt'), login: { username: 'fleet-pull', passwordFile: path.join(d, 'pull.password') } },
      { registry: 'mirror.example', ca: path.join(d, 'reg-ca.crt') },
    ]);
    const unit = fs.readFileSync(new URL('../../scripts/systemd/berth-agent.service', import.meta.url), 'utf8');
    const entries = await commonEntries(fleet, unit);
    const at = (p: string) => entries.find((e) => e.path === p);
    expect(at('/var/lib/berth')).toMatchObject({ kind: 'dir', perm: 0o700 });
    expect(at('/var/lib/berth/certs.d/registry.example:5000/ca.crt')).toMatchObject({ kind: 'file', perm: 0o644 });
    expect(at('/var/lib/berth/certs.d/mirror.example/ca.crt')).toMatchObject({ kind: 'file', perm: 0o644 });
    const auth = at('/var/lib/berth/auth.json') as { perm: number; source: Buffer };
    expect(auth.perm).toBe(0o600);
    // What the agent on the board will read: the same file through berth's credential store.
    const root = tmp();
    fs.writeFileSync(path.join(root, 'auth.json'), auth.source);
    expect(new CredentialStore(root, { HOME: root }).get('registry.example:5000')).toEqual({ username: 'fleet-pull', password: 's3cret:with colon' });
    expect(new CredentialStore(root, { HOME: root }).get('mirror.example')).toBeUndefined();

    const write = (text: string): string => {
      fs.writeFileSync(path.join(d, 'f.yaml'), `broker: mqtts://b\ncredentials: devices\n${key}registries:\n${text}`);
      return path.join(d, 'f.yaml');
    };
    await expect(loadFleet(write('  r.example: { username: u }\n'))).rejects.toThrow(/is invalid/); // a login needs its password file
    await expect(loadFleet(write('  "bad host/x": { ca: reg-ca.crt }\n'))).rejects.toThrow(/is invalid/);
    await expect(loadFleet(write('  r.example: { ca: nope.crt }\n'))).rejects.toThrow(/registries.r.example.ca .*nope.crt does not exist/);
    // A ':' in the user name could not be read back from auth.json (user:password in base64).
    await expect(commonEntries(await loadFleet(write('  r.example: { username: "a:b", passwordFile: pull.password }\n')), unit)).rejects.toThrow(/user name "a:b" contains ':'/);
    // Keys are spelled as the agent looks them up: Docker Hub's aliases fold into docker.io.
    expect((await loadFleet(write('  index.docker.io: { ca: reg-ca.crt }\n'))).registries).toEqual([{ registry: 'docker.io', ca: path.join(d, 'reg-ca.crt') }]);
    fs.writeFileSync(path.join(d, 'not-pem.crt'), 'hello');
    await expect(commonEntries(await loadFleet(write('  r.example: { ca: not-pem.crt }\n')), unit)).rejects.toThrow(/holds no PEM certificate/);
  });

  it('device ids from the first CSV column, header and comments skipped; bad and duplicate ids named by line', () => {
    expect(parseDeviceCsv('device_id,location\n# spare\npi-001,hall\n"b8:27:eb:00:00:01",roof\n\npi-002\n')).toEqual(['pi-001', 'b8:27:eb:00:00:01', 'pi-002']);
    expect(() => parseDeviceCsv('pi-1\npi/2\n', 'ids.csv')).toThrow(/ids.csv:2: invalid device id "pi\/2"/);
    expect(() => parseDeviceCsv('pi-1\npi-1\n', 'ids.csv')).toThrow(/ids.csv:2: device id "pi-1" already on line 1/);
    expect(() => parseDeviceCsv('id\n')).toThrow(/no device ids/);
  });
});
