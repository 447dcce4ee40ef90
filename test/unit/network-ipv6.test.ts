import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { netavarkDocument } from '../../src/network/netavark.js';
import { inspectNetwork } from '../../src/network/inspect.js';
import { formatIPv6, leaseAddress6, parseCidr6, parseIPv6, parseProcIpv6Route, planSubnet6 } from '../../src/network/ipv6.js';
import { NetworkService } from '../../src/network/service.js';
import { StateStore } from '../../src/store/store.js';
import { variantHost } from '../helpers/host-tree.js';

// /proc/net/ipv6_route: the host's LAN 2001:db8:1::/64 on eth0, plus link-local and loopback ones to skip.
const V6_ROUTES = [
  '20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
  'fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
  '00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo',
].join('\n');

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function service(): NetworkService {
  const h = variantHost(undefined, { 'proc/net/route': 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n', 'proc/net/ipv6_route': V6_ROUTES });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-net6-'));
  const store = StateStore.open(path.join(root, 'state'));
  cleanups.push(() => {
    store.close();
    h.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
  });
  return new NetworkService(store, h.host);
}

describe('IPv6 addresses', () => {
  it('parse and format canonically (RFC 5952)', () => {
    expect(formatIPv6(parseIPv6('FD00:0:0:0:0:0:0:1', 'x'))).toBe('fd00::1');
    expect(formatIPv6(parseIPv6('2001:db8:0:0:1:0:0:1', 'x'))).toBe('2001:db8::1:0:0:1');
    expect(formatIPv6(parseIPv6('::', 'x'))).toBe('::');
    expect(formatIPv6(parseIPv6('1:0:2:0:3:0:4:0', 'x'))).toBe('1:0:2:0:3:0:4:0');
    expect(() => parseIPv6('10.0.0.1', '--ip6')).toThrow('--ip6: "10.0.0.1" is not an IPv6 address');
    expect(() => parseCidr6('fd00::/129', '--subnet')).toThrow('is not an IPv6 subnet');
    expect(parseProcIpv6Route(V6_ROUTES).map((r) => `${formatIPv6(r.cidr.base)}/${r.cidr.prefix} ${r.device}`)).toEqual(['2001:db8:1::/64 eth0']);
  });

  it('plan a subnet: explicit (checked) or a random ULA /64', () => {
    expect(planSubnet6({ subnet: 'fd00:1::/64' }, [])).toEqual({ subnet: 'fd00:1::/64', gateway: 'fd00:1::1' });
    const random = planSubnet6({}, []);
    expect(random.subnet).toMatch(/^fd[0-9a-f]{2}:[0-9a-f:]+\/64$/);
    expect(() => planSubnet6({ subnet: 'fd00:1::/127' }, [])).toThrow('leaves no room');
    expect(() => planSubnet6({ subnet: 'fd00:1::/64', gateway: 'fd00:2::1' }, [])).toThrow('not a host address of fd00:1::/64');
    expect(() => planSubnet6({ subnet: 'fd00:1:0:0:1::/80' }, [{ cidr: parseCidr6('fd00:1::/64', 'x'), owner: 'network "a"' }])).toThrow('--subnet fd00:1:0:0:1::/80 overlaps fd00:1::/64 of network "a"');
  });

  it('lease the lowest free address, or a given one inside the subnet', () => {
    const n = { name: 'n', ipv6Subnet: 'fd00::/64', ipv6Gateway: 'fd00::1' };
    expect(leaseAddress6(n, new Set())).toBe('fd00::2');
    expect(leaseAddress6(n, new Set(['fd00::2']))).toBe('fd00::3');
    expect(leaseAddress6(n, new Set(), 'FD00::00A')).toBe('fd00::a');
    expect(() => leaseAddress6(n, new Set(), 'fd01::5')).toThrow("--ip6 fd01::5 is not an address of network n's IPv6 subnet fd00::/64");
    expect(() => leaseAddress6(n, new Set(), 'fd00::1')).toThrow('is the IPv6 gateway of network n');
    expect(() => leaseAddress6(n, new Set(['fd00::9']), 'fd00::9')).toThrow('already in use on network n');
  });
});

describe('dual-stack networks', () => {
  it('network create --ipv6 records both halves; netavark gets both subnets and addresses; inspect shows them', () => {
    const s = service();
    const n = s.create({ name: 'ds', ipv6: true, ipv6Subnet: 'fd00:aa::/64' });
    expect(n).toMatchObject({ ipv6Subnet: 'fd00:aa::/64', ipv6Gateway: 'fd00:aa::1' });
    const att = s.lease('c'.repeat(64), 'ds', ['web']);
    expect(att.lease).toMatchObject({ ip6: 'fd00:aa::2' });
    const doc = netavarkDocument({ containerId: 'c'.repeat(64), containerName: 'web', attachments: [att], ports: [] }) as any;
    expect(doc.networks[n.id].static_ips).toEqual([att.lease.ip, 'fd00:aa::2']);
    expect(doc.network_info[n.id]).toMatchObject({ ipv6_enabled: true, subnets: [{ subnet: n.subnet, gateway: n.gateway }, { subnet: 'fd00:aa::/64', gateway: 'fd00:aa::1' }] });
    const shown = inspectNetwork(s.find('ds'), s.leases(n.id)) as any;
    expect(shown.EnableIPv6).toBe(true);
    expect(shown.IPAM.Config[1]).toEqual({ Subnet: 'fd00:aa::/64', Gateway: 'fd00:aa::1' });
    expect(Object.values(shown.Containers)[0]).toMatchObject({ IPv6Address: 'fd00:aa::2/64' });
  });

  it('refuses bad input naming it: a v6 subnet without --ipv6, overlaps with a network or a host route, --ip6 on a v4 network', () => {
    const s = service();
    expect(() => s.create({ name: 'x', ipv6Subnet: 'fd00:bb::/64' })).toThrow('fd00:bb::/64 is an IPv6 address: the network needs --ipv6');
    s.create({ name: 'a', ipv6: true, ipv6Subnet: 'fd00:bb::/64' });
    expect(() => s.create({ name: 'b', ipv6: true, ipv6Subnet: 'fd00:bb::/48' })).toThrow('--subnet fd00:bb::/48 overlaps fd00:bb::/64 of network "a"');
    expect(() => s.create({ name: 'c', ipv6: true, ipv6Subnet: '2001:db8:1::/80' })).toThrow("overlaps 2001:db8:1::/64 of the host's route on eth0");
    s.create({ name: 'v4' });
    expect(() => s.lease('d'.repeat(64), 'v4', ['x'], undefined, 'fd00::5')).toThrow('--ip6 fd00::5: network v4 has no IPv6 subnet');
    expect(s.list().map((n) => n.name)).toEqual(['a', 'v4']);
  });
});
