import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AppCache } from '../../src/compose/cache.js';
import { readComposeFile } from '../../src/compose/file.js';
import { checkDeclaredVolumes, checkReferences, namedVolumeOf } from '../../src/compose/refs.js';
import { composeConfig } from '../../src/compose/render.js';
import { appResources } from '../../src/compose/top-level.js';
import type { DesiredState } from '../../src/protocol/types.js';
import { checkDesiredShape } from '../../src/protocol/validate.js';
import { parseYaml } from '../../src/yaml.js';

/** Top-level volumes, networks, configs and secrets: reader, schema, normalization, references, rendering, files on disk. */

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-top-level-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const b64 = (s: string): string => Buffer.from(s).toString('base64');

function project(name: string, files: Record<string, string | Buffer>): string {
  const dir = path.join(root, name);
  for (const [f, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), data);
  }
  return path.join(dir, 'compose.yaml');
}

const STACK = `
name: greenhouse
services:
  broker: {image: eclipse-mosquitto:2, volumes: ["broker-data:/mosquitto/data"]}
  agent: {image: reg/agent:1, network_mode: host}
volumes:
  broker-data:
  logs: {driver: local, driver_opts: {type: none, o: bind, device: ./logs}, labels: {tier: 2}}
  scratch: {driver_opts: {type: tmpfs, device: tmpfs, o: "size=16m"}}
  shared: {external: true, name: site-shared}
  legacy: {external: {name: old-data}}
networks:
  lan: {internal: true, driver_opts: {mtu: 1400}, ipam: {config: [{subnet: 10.89.7.0/24, gateway: 10.89.7.1, ip_range: 10.89.7.128/25}]}, labels: [zone=a]}
  uplink: {external: true}
  renamed: {name: custom-net, attachable: true, enable_ipv6: true}
configs:
  mosquitto: {file: ./mosquitto.conf}
  banner: {content: "hello $$USER"}
  site: {environment: SITE}
secrets:
  token: {file: ./token.txt}
`;

describe('top-level sections of a compose file', () => {
  const file = project('stack', { 'compose.yaml': STACK, 'mosquitto.conf': 'listener 1883\n', 'token.txt': 's3cret' });

  it('become the desired state and the app model, with compose names', async () => {
    const app = await readComposeFile(file, { env: { SITE: 'north' }, stateRoot: '/srv/berth' });
    expect(app.source.configs).toEqual({ mosquitto: { content: b64('listener 1883\n') }, banner: { content: b64('hello $USER') }, site: { content: b64('north') } });
    expect(Object.fromEntries([...app.volumes].map(([k, v]) => [k, [v.hostName, v.external]]))).toEqual({
      'broker-data': ['greenhouse_broker-data', false], logs: ['greenhouse_logs', false], scratch: ['greenhouse_scratch', false], shared: ['site-shared', true], legacy: ['old-data', true],
    });
    expect(app.volumes.get('logs')).toMatchObject({ driverOpts: { type: 'none', o: 'bind', device: path.join(path.dirname(file), 'logs') }, labels: { tier: '2' } });
    // broker names no network: it is on compose's default one, which the app gets.
    expect([...app.networks.keys()]).toEqual(['default', 'lan', 'renamed', 'uplink']);
    expect(app.networks.get('default')).toEqual({ name: 'default', hostName: 'greenhouse_default', external: false, internal: false, driverOpts: {}, enableIpv6: false, labels: {} });
    expect(app.networks.get('lan')).toEqual({
      name: 'lan', hostName: 'greenhouse_lan', external: false, internal: true, driverOpts: { mtu: '1400' },
      ipam: { subnet: '10.89.7.0/24', gateway: '10.89.7.1', ipRange: '10.89.7.128/25' }, enableIpv6: false, labels: { zone: 'a' },
    });
    expect(app.networks.get('uplink')).toMatchObject({ hostName: 'uplink', external: true });
    expect(app.networks.get('renamed')).toMatchObject({ hostName: 'custom-net', enableIpv6: true });
    expect(app.secrets.get('token')).toEqual({ name: 'token', content: b64('s3cret') });
  });

  it('print as compose writes them, without secrets, and read back the same', async () => {
    const text = await composeConfig(file, { env: { SITE: 'north' } });
    const doc = (await parseYaml(text)) as Record<string, Record<string, unknown>>;
    expect(doc.configs).toEqual({ mosquitto: { content: 'listener 1883\n' }, banner: { content: 'hello $$USER' }, site: { content: 'north' } });
    expect(doc.secrets!.token).toEqual({ 'x-content': expect.stringMatching(/^not shown \(6 bytes, sha256 [0-9a-f]{64}\)$/) });
    expect(text).not.toContain('s3cret');
    expect(doc.networks!.lan).toEqual({ name: 'greenhouse_lan', internal: true, driver_opts: { mtu: '1400' }, ipam: { config: [{ subnet: '10.89.7.0/24', gateway: '10.89.7.1', ip_range: '10.89.7.128/25' }] }, labels: { zone: 'a' } });
    expect(doc.volumes!.shared).toEqual({ name: 'site-shared', external: true });
    // Without the secret (which it does not show), the printed file is read back to the same document.
    delete doc.secrets;
    const again = project('again', { 'compose.yaml': JSON.stringify(doc) });
    const reread = (await parseYaml(await composeConfig(again, { env: {} }))) as Record<string, unknown>;
    expect(reread).toEqual(doc);
  });
});

describe('what the top level refuses, naming the key', () => {
  const refuse = (text: string, message: RegExp, files: Record<string, string> = {}) =>
    expect(readComposeFile(project(`bad-${Math.random().toString(36).slice(2)}`, { 'compose.yaml': text, ...files }), { env: {} })).rejects.toThrow(message);

  it.each([
    ['an external config', 'services: {}\nconfigs:\n  c: {external: true}\n', /configs\.c\.external: a board has no store of configs or secrets/],
    ['a config with two sources', 'services: {}\nconfigs:\n  c: {file: ./a, content: x}\n', /configs\.c: give exactly one of file:, content: or environment: \(found file, content\)/],
    ['a missing config file', 'services: {}\nsecrets:\n  s: {file: ./nope}\n', /secrets\.s\.file: cannot read \S+nope: ENOENT/],
    ['an unset environment config', 'services: {}\nconfigs:\n  c: {environment: NOPE}\n', /configs\.c\.environment: variable NOPE is not set/],
    ['a config option berth does not apply', 'services: {}\nconfigs:\n  c: {content: x, template_driver: golang}\n', /configs\.c\.template_driver: berth does not support this compose key/],
    ['a volume of a filesystem type', 'services: {}\nvolumes:\n  v: {driver_opts: {type: nfs, o: "addr=nas", device: ":/export"}}\n', /volumes\.v\.driver_opts\.type: .*"nfs" would be a filesystem mount/],
    ['a bind volume without bind', 'services: {}\nvolumes:\n  v: {driver_opts: {type: none, device: /srv}}\n', /volumes\.v\.driver_opts\.o: .*needs o: bind/],
    ['an external volume with options', 'services: {}\nvolumes:\n  v: {external: true, driver_opts: {type: tmpfs}}\n', /volumes\.v\.driver_opts: an external volume is made outside this app/],
    ['two IPv4 subnets', 'services: {}\nnetworks:\n  n: {ipam: {config: [{subnet: 10.1.0.0/24}, {subnet: 10.2.0.0/24}]}}\n', /networks\.n\.ipam\.config\[1\]: berth gives a network one IPv4 subnet/],
    ['an IPv6 subnet without enable_ipv6', 'services: {}\nnetworks:\n  n: {ipam: {config: [{subnet: 10.1.0.0/24}, {subnet: "fd00::/64"}]}}\n', /networks\.n\.ipam\.config\[1\]\.subnet: fd00::\/64 is an IPv6 subnet: the network needs enable_ipv6: true/],
    ['two IPv6 subnets', 'services: {}\nnetworks:\n  n: {enable_ipv6: true, ipam: {config: [{subnet: "fd00::/64"}, {subnet: "fd01::/64"}]}}\n', /networks\.n\.ipam\.config\[1\]: berth gives a network one IPv6 subnet/],
    ['ipv6_address without enable_ipv6', 'services:\n  a: {image: x, networks: {n: {ipv6_address: "fd00::5"}}}\nnetworks:\n  n: {}\n', /services\.a\.networks\.n\.ipv6_address: fd00::5 needs IPv6 on network "n": add enable_ipv6: true/],
    ['ipv6_address outside the subnet', 'services:\n  a: {image: x, networks: {n: {ipv6_address: "fd01::5"}}}\nnetworks:\n  n: {enable_ipv6: true, ipam: {config: [{subnet: "fd00::/64"}]}}\n', /services\.a\.networks\.n\.ipv6_address: fd01::5 is not inside the network's IPv6 subnet fd00::\/64/],
    ['a bridge option netavark cannot honour', 'services: {}\nnetworks:\n  n: {driver_opts: {com.docker.network.bridge.enable_icc: false}}\n', /networks\.n\.driver_opts\.com\.docker\.network\.bridge\.enable_icc=false: berth cannot stop traffic between the containers of one bridge/],
    ['an unknown bridge option', 'services: {}\nnetworks:\n  n: {driver_opts: {com.docker.network.bridge.default_bridge: true}}\n', /networks\.n\.driver_opts\.com\.docker\.network\.bridge\.default_bridge: unknown bridge option/],
    ['a bad subnet', 'services: {}\nnetworks:\n  n: {ipam: {config: [{subnet: 10.1.0.0/40}]}}\n', /networks\.n\.ipam\.config\[0\]\.subnet: "10\.1\.0\.0\/40" is not an address\/prefix/],
    ['mixed families', 'services: {}\nnetworks:\n  n: {ipam: {config: [{subnet: 10.1.0.0/24, gateway: "fd00::1"}]}}\n', /networks\.n\.ipam\.config\[0\]: subnet, gateway and ip_range must all be IPv4 or all IPv6/],
    ['an undeclared named volume', 'services:\n  a: {image: x, volumes: ["data:/data"]}\n', /services\.a\.volumes\[0\]: volume "data" is not declared under top-level volumes:/],
  ])('%s', async (_, text, message) => {
    await refuse(text, message);
  });

  it('bounds sizes and names in the schema, the device\'s defence', () => {
    const base = { revision: 1, services: {} };
    const shape = (d: object) => () => checkDesiredShape(d, 'desired state');
    expect(shape({ ...base, configs: { c: { content: 'not base64!' } } })).toThrow(/configs\.c\.content: must match pattern/);
    expect(shape({ ...base, configs: { c: { content: 'A'.repeat(174768) } } })).toThrow(/configs\.c\.content: must NOT have more than 174764 characters/);
    expect(shape({ ...base, networks: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`n${i}`, null])) })).toThrow(/networks: must NOT have more than 16 properties/);
    expect(shape({ ...base, volumes: { '../etc': null } })).toThrow(/volumes: key "\.\.\/etc" must match pattern/);
    expect(shape({ ...base, volumes: { v: { name: 'a/b' } } })).toThrow(/volumes\.v\.name: must match pattern/);
    expect(shape({ ...base, name: 'x'.repeat(64) })).toThrow(/name: must match pattern/);
  });
});

describe('references from services', () => {
  const desired = (services: Record<string, object>, top: Partial<DesiredState> = {}): DesiredState => ({ revision: 1, services: services as DesiredState['services'], ...top });
  const check = (d: DesiredState) => () => checkReferences(d, appResources(d, 'app', '/data'));

  it('must name declared networks, configs and secrets; default is always there', () => {
    expect(check(desired({ a: { image: 'x', networks: ['default'] } }))).not.toThrow();
    expect(check(desired({ a: { image: 'x', networks: { lan: { aliases: ['db'] } } } }))).toThrow(/services\.a\.networks\.lan: network "lan" is not declared under top-level networks:/);
    expect(check(desired({ a: { image: 'x', networks: ['lan'] } }, { networks: { lan: null } }))).not.toThrow();
    expect(check(desired({ a: { image: 'x', configs: ['conf'] } }))).toThrow(/services\.a\.configs\[0\]: config "conf" is not declared under top-level configs:/);
    expect(check(desired({ a: { image: 'x', secrets: [{ source: 'tok', target: 'token' }] } }))).toThrow(/services\.a\.secrets\[0\]: secret "tok" is not declared under top-level secrets:/);
    // A desired state may name berth's own volumes directly (as before top-level volumes existed); a compose file may not.
    const db = desired({ a: { image: 'x', volumes: [{ type: 'volume', source: 'db', target: '/db' }] } });
    expect(check(db)).not.toThrow();
    expect(() => checkDeclaredVolumes(db, appResources(db, 'app', '/data'))).toThrow(/services\.a\.volumes\[0\]: volume "db" is not declared under top-level volumes:/);
  });

  it('tell named volumes from paths as compose does', () => {
    expect(['data:/d', './data:/d', '/srv:/d', '~/x:/d', '/anon', { type: 'bind', source: 'x' }, { type: 'volume', source: 'v' }].map(namedVolumeOf)).toEqual(['data', undefined, undefined, undefined, undefined, undefined, 'v']);
  });

  it('the default network exists only when a service is on it', () => {
    expect([...appResources(desired({ a: { image: 'x', network_mode: 'host' } }), 'app', '/d').networks.keys()]).toEqual([]);
    expect([...appResources(desired({ a: { image: 'x', networks: ['lan'] } }, { networks: { lan: null } }), 'app', '/d').networks.keys()]).toEqual(['lan']);
  });
});

describe('normalizing on the device', () => {
  it('the app cache normalizes received messages with the device\'s state root', () => {
    const volumes = { v: { driver_opts: { type: 'none', o: 'bind', device: './v' } } };
    const cache = new AppCache(4, { stateRoot: '/srv/b' });
    const checked = cache.check(JSON.stringify({ revision: 3, name: 'site', services: {}, volumes }));
    expect(checked.ok && checked.desired.volumes.get('v')!.driverOpts.device).toBe('/srv/b/apps/site/v');
    expect(cache.of({ revision: 4, services: {}, volumes }).volumes.get('v')!.driverOpts.device).toBe('/srv/b/apps/app/v');
  });
});
