import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { NetworkService } from '../../src/network/service.js';
import { StateStore } from '../../src/store/store.js';
import { variantHost } from '../helpers/host-tree.js';

const ROUTES = [
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
  'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  'eth0\t000059AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0', // 172.89.0.0/16: the host's LAN
].join('\n');

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function service(routes = ROUTES, files: Readonly<Record<string, string>> = {}): { s: NetworkService; store: StateStore; root: string } {
  const h = variantHost(undefined, { 'proc/net/route': routes, ...files });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-net-'));
  const store = StateStore.open(path.join(root, 'state'));
  cleanups.push(() => {
    store.close();
    h.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
  });
  return { s: new NetworkService(store, h.host), store, root };
}

const caught = (fn: () => unknown): BerthError => {
  try {
    fn();
  } catch (e) {
    return e as BerthError;
  }
  throw new Error('no error');
};

describe('NetworkService', () => {
  it('creates networks with podman-style subnets, the default bridge without DNS, and persists them', () => {
    const { s, store } = service();
    const a = s.create({ name: 'app_default', labels: { 'com.docker.compose.project': 'app' } });
    expect(a).toMatchObject({ name: 'app_default', driver: 'bridge', subnet: '10.89.0.0/24', gateway: '10.89.0.1', internal: false, dnsEnabled: true, bridge: `br-${a.id.slice(0, 12)}` });
    expect(a.id).toMatch(/^[0-9a-f]{64}$/);
    const d = s.ensureDefault();
    expect(d).toMatchObject({ name: 'bridge', subnet: '10.88.0.0/16', dnsEnabled: false });
    expect(s.ensureDefault().id).toBe(d.id);
    const b = s.create({ name: 'iot', internal: true, subnet: '172.30.0.0/24', ipRange: '172.30.0.128/25', options: { mtu: '1400' } });
    expect(b).toMatchObject({ subnet: '172.30.0.0/24', gateway: '172.30.0.1', ipRange: '172.30.0.128/25', internal: true, options: { mtu: '1400' } });
    expect(new NetworkService(store, variantHost(undefined, {}).host).list().map((n) => n.name)).toEqual(['app_default', 'bridge', 'iot']);
    expect(s.find(a.id.slice(0, 6)).name).toBe('app_default');
  });

  it('refuses a name in use, a reserved name, a bad name, another driver, unknown options, overlapping subnets', () => {
    const { s } = service();
    s.create({ name: 'one', subnet: '10.50.0.0/16' });
    expect(caught(() => s.create({ name: 'one' }))).toMatchObject({ category: 'conflict', message: 'network with name one already exists' });
    expect(caught(() => s.create({ name: 'host' })).message).toMatch(/"host" is a network mode/);
    expect(caught(() => s.create({ name: '-x' })).message).toMatch(/invalid network name "-x"/);
    expect(caught(() => s.create({ name: 'm', driver: 'macvlan' })).message).toBe('--driver macvlan: only the bridge driver is supported');
    expect(caught(() => s.create({ name: 'o', options: { parent: 'eth0' } })).message).toMatch(/--opt parent: unknown bridge option/);
    expect(caught(() => s.create({ name: 'two', subnet: '10.50.3.0/24' }))).toMatchObject({ category: 'conflict', message: '--subnet 10.50.3.0/24 overlaps 10.50.0.0/16 of network "one"' });
    expect(caught(() => s.create({ name: 'lan', subnet: '172.89.1.0/24' })).message).toBe("--subnet 172.89.1.0/24 overlaps 172.89.0.0/16 of the host's route on eth0");
    expect(s.list().map((n) => n.name)).toEqual(['one']);
  });

  it('ignores routes of its own bridges but not of other bridges', () => {
    const { s } = service();
    const a = s.create({ name: 'a' });
    const withBridges = `${ROUTES}\n${a.bridge}\t0000590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\nbr-0123456789ab\t0001590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0`;
    const h = variantHost(undefined, { 'proc/net/route': withBridges });
    cleanups.push(h.cleanup);
    const s2 = new NetworkService(s.records.store, h.host);
    // 10.89.0.0/24 is a's (by its record), 10.89.1.0/24 another state root's bridge: the next is .2.
    expect(s2.create({ name: 'b' }).subnet).toBe('10.89.2.0/24');
  });

  it('leases addresses in order, reuses released ones, and reports exhaustion', () => {
    const { s } = service();
    s.create({ name: 'tiny', subnet: '10.60.0.0/29' });
    const ips = ['c1', 'c2', 'c3', 'c4', 'c5'].map((c) => s.lease(c, 'tiny', [c, `${c}-alias`, c]).lease.ip);
    expect(ips).toEqual(['10.60.0.2', '10.60.0.3', '10.60.0.4', '10.60.0.5', '10.60.0.6']);
    expect(s.attachmentsOf('c2')).toEqual([{ network: s.find('tiny'), lease: { networkId: s.find('tiny').id, containerId: 'c2', ip: '10.60.0.3', names: ['c2', 'c2-alias'], interfaceName: 'eth0' }, interfaceName: 'eth0' }]);
    const e = caught(() => s.lease('c6', 'tiny', ['c6']));
    expect(e).toMatchObject({ category: 'resource', message: 'network tiny has no free address left in 10.60.0.0/29 (5 in use)' });
    s.release('c3');
    expect(s.lease('c7', 'tiny', ['c7']).lease.ip).toBe('10.60.0.4');
    expect(caught(() => s.lease('c8', 'nope', [])).message).toBe('network nope not found');
    expect(s.lease('c9', 'bridge', ['c9']).network.name).toBe('bridge');
  });

  it('rm refuses a network in use, naming its containers; prune keeps used ones and the default bridge', () => {
    const { s } = service();
    s.create({ name: 'used' });
    s.create({ name: 'idle' });
    s.ensureDefault();
    s.lease('id-web', 'used', ['web']);
    s.lease('id-db', 'used', ['db']);
    expect(caught(() => s.remove('used'))).toMatchObject({ category: 'conflict', message: 'network used is in use by containers web, db' });
    expect(s.prune().map((n) => n.name)).toEqual(['idle']);
    expect(s.list().map((n) => n.name)).toEqual(['used', 'bridge']);
    s.release('id-web');
    s.release('id-db');
    expect(s.remove('used').name).toBe('used');
    expect(caught(() => s.remove('used')).category).toBe('notFound');
  });

  it('drops leases a create killed midway left behind (no container row, older than any create), never a young one', () => {
    const { s } = service();
    const n = s.create({ name: 'crashy' });
    // A create in flight elsewhere: young, no container row yet. It must hold.
    s.lease('in-flight', 'crashy', ['starting']);
    expect(() => s.remove('crashy')).toThrow('network crashy is in use by container starting');
    s.release('in-flight');
    // A create killed after leasing, an hour ago: its lease goes on the next network operation.
    s.records.insertLease({ networkId: n.id, containerId: 'dead-create', ip: '10.89.0.2', names: ['ghost'], interfaceName: 'eth0' }, Date.now() - 3_600_000);
    expect(s.leases(n.id).map((l) => l.names[0])).toEqual(['ghost']);
    expect(s.remove('crashy').name).toBe('crashy');
  });

  it('connects a container to more networks on the lowest free ethN, with --ip checked, and disconnects one', () => {
    const { s } = service();
    s.create({ name: 'front', subnet: '10.61.0.0/24' });
    s.create({ name: 'back', subnet: '10.62.0.0/24', ipRange: '10.62.0.128/25' });
    s.create({ name: 'third', subnet: '10.63.0.0/24' });
    expect(s.lease('c', 'front', ['c']).interfaceName).toBe('eth0');
    expect(s.lease('c', 'back', ['c', 'db'], '10.62.0.200').lease).toMatchObject({ ip: '10.62.0.200', interfaceName: 'eth1', names: ['c', 'db'] });
    expect(caught(() => s.lease('c', 'back', ['c']))).toMatchObject({ category: 'conflict', message: 'container c is already connected to network back' });
    expect(caught(() => s.lease('d', 'back', ['d'], '10.62.0.200'))).toMatchObject({ category: 'conflict', message: '--ip 10.62.0.200 is already in use on network back' });
    expect(caught(() => s.lease('d', 'back', ['d'], '10.62.0.5'))).toMatchObject({ category: 'invalid', message: '--ip 10.62.0.5 is not a usable address of network back (10.62.0.128/25)' });
    expect(caught(() => s.lease('d', 'front', ['d'], '10.61.0.1'))).toMatchObject({ category: 'invalid', message: '--ip 10.61.0.1 is the gateway of network front' });
    expect(caught(() => s.lease('d', 'front', ['d'], '10.61.0.255')).category).toBe('invalid');
    expect(caught(() => s.lease('d', 'front', ['d'], 'nonsense')).category).toBe('invalid');
    // eth0 goes: eth1 keeps its name (the kernel's), and the next connect takes eth0 again.
    s.releaseOne('c', s.find('front').id);
    expect(s.attachmentsOf('c').map((a) => [a.network.name, a.interfaceName])).toEqual([['back', 'eth1']]);
    s.lease('c', 'third', ['c']);
    expect(s.attachmentsOf('c').map((a) => [a.network.name, a.interfaceName])).toEqual([['third', 'eth0'], ['back', 'eth1']]);
    expect(s.attachment('c', 'c', 'back').lease.ip).toBe('10.62.0.200');
    expect(caught(() => s.attachment('c', 'c', 'front'))).toMatchObject({ category: 'notFound', message: 'container c is not connected to network front' });
  });
});

const D = 'com.docker.network.';

describe("docker's bridge driver options", () => {
  it('name the bridge (unless another network or a host interface has that name), and accept the MTU, icc and masquerade on, a binding address', () => {
    const { s } = service(ROUTES, { 'sys/class/net/eth0': '' });
    const n = s.create({ name: 'lan', options: { [`${D}bridge.name`]: 'br-lan', [`${D}driver.mtu`]: '1400', [`${D}bridge.enable_icc`]: 'true', [`${D}bridge.enable_ip_masquerade`]: 'true', [`${D}bridge.host_binding_ipv4`]: '127.0.0.1' } });
    expect(n.bridge).toBe('br-lan');
    expect(() => s.create({ name: 'again', options: { [`${D}bridge.name`]: 'br-lan' } })).toThrow(`--opt ${D}bridge.name=br-lan: network lan already uses that bridge`);
    expect(() => s.create({ name: 'uplink', options: { [`${D}bridge.name`]: 'eth0' } })).toThrow(`--opt ${D}bridge.name=eth0: the host already has an interface of that name`);
    expect(() => s.create({ name: 'long', options: { [`${D}bridge.name`]: 'a-very-long-bridge' } })).toThrow(/not an interface name/);
    expect(s.list().map((x) => x.name)).toEqual(['lan']);
  });

  it('refuse what netavark cannot do and bad values, naming the option', () => {
    const { s } = service(ROUTES, { 'sys/class/net/eth0': '' });
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.enable_icc`]: 'false' } })).toThrow(`--opt ${D}bridge.enable_icc=false: berth cannot stop traffic between the containers of one bridge`);
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.enable_ip_masquerade`]: 'false' } })).toThrow(`--opt ${D}bridge.enable_ip_masquerade=false: berth masquerades the outbound traffic`);
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.host_binding_ipv4`]: 'eth0' } })).toThrow(`--opt ${D}bridge.host_binding_ipv4: "eth0" is not an IPv4 address`);
    expect(() => s.create({ name: 'x', options: { [`${D}driver.mtu`]: '9' } })).toThrow(/the MTU must be a number of 68…65535/);
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.enable_icc`]: 'no' } })).toThrow(/use true or false/);
    expect(() => s.create({ name: 'x', options: { [`${D}bridge.default_bridge`]: 'true' } })).toThrow(`--opt ${D}bridge.default_bridge: unknown bridge option`);
  });
});
