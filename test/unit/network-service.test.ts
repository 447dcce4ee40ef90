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

function service(routes = ROUTES): { s: NetworkService; store: StateStore; root: string } {
  const h = variantHost(undefined, { 'proc/net/route': routes });
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
    expect(s.attachmentsOf('c2')).toEqual([{ network: s.find('tiny'), lease: { networkId: s.find('tiny').id, containerId: 'c2', ip: '10.60.0.3', names: ['c2', 'c2-alias'] }, interfaceName: 'eth0' }]);
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
    s.records.insertLease({ networkId: n.id, containerId: 'dead-create', ip: '10.89.0.2', names: ['ghost'] }, Date.now() - 3_600_000);
    expect(s.leases(n.id).map((l) => l.names[0])).toEqual(['ghost']);
    expect(s.remove('crashy').name).toBe('crashy');
  });
});
