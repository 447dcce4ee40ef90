import { describe, expect, it } from 'vitest';
import { assertHostPortsFree } from '../../src/network/host-ports.js';
import type { Attachment } from '../../src/network/netavark.js';
import { assertProxyLimits, natPorts, needsProxy, portProxies, proxyMonitorArgs, PROXY_LISTENERS_MAX } from '../../src/network/port-proxy.js';
import { parsePublish } from '../../src/network/ports.js';
import type { NetworkDefinition } from '../../src/network/types.js';
import { service } from '../helpers/compose-services.js';
import { variantHost } from '../helpers/host-tree.js';

const net = (name: string, v6: boolean): NetworkDefinition => ({
  id: name.padEnd(64, '0'), name, driver: 'bridge', subnet: '10.89.7.0/24', gateway: '10.89.7.1', internal: false, dnsEnabled: true,
  bridge: `br-${name}`, labels: {}, options: {}, createdAt: 0,
  ...(v6 && { ipv6Subnet: 'fd42:7::/64', ipv6Gateway: 'fd42:7::1' }),
});
const attach = (name: string, ifName: string, ip: string, ip6?: string): Attachment => {
  const network = net(name, ip6 !== undefined);
  return { network, interfaceName: ifName, lease: { networkId: network.id, containerId: 'c'.repeat(64), ip, ...(ip6 !== undefined && { ip6 }), names: ['web'], interfaceName: ifName } };
};

describe('port proxy: which mappings the monitor forwards', () => {
  it('is the IPv6 loopback in any spelling, and nothing else', () => {
    expect(needsProxy(parsePublish('[::1]:8080:80'))).toBe(true);
    expect(needsProxy(parsePublish('[0:0:0:0:0:0:0:1]:8080:80/udp'))).toBe(true);
    for (const spec of ['8080:80', '127.0.0.1:8080:80', '[::]:8080:80', '[fd00::1]:8080:80', '[::2]:8080:80']) expect(needsProxy(parsePublish(spec)), spec).toBe(false);
  });

  it('takes compose\'s short [::1] form and long form host_ip "::1" the same way', async () => {
    const s = await service('services:\n  web:\n    image: x\n    ports:\n      - "[::1]:8080:80"\n      - {target: 53, published: "5353", host_ip: "::1", protocol: udp}\n      - "127.0.0.1:8081:80"\n');
    expect(s.run.ports!.map(needsProxy)).toEqual([true, true, false]);
  });

  it('keeps the proxied mappings away from netavark', () => {
    const ports = ['[::1]:8080:80', '127.0.0.1:8081:80', '8082:80', '[::1]:5353:53/udp'].map(parsePublish);
    expect(natPorts(ports)).toEqual([ports[1], ports[2]]);
  });

  it('forwards to the IPv6 address of the first interface when its network has one, else to the IPv4 address', () => {
    const ports = [parsePublish('[::1]:8080:80'), parsePublish('[::1]:7000-7001:9000-9001/udp'), parsePublish('8082:80')];
    // Listed out of order: eth0 is the target, as docker publishes through the container's first network.
    const dual = [attach('other', 'eth1', '10.89.8.2'), attach('app', 'eth0', '10.89.7.2', 'fd42:7::2')];
    expect(portProxies(ports, dual)).toEqual([
      { protocol: 'tcp', hostIp: '::1', hostPort: 8080, targetIp: 'fd42:7::2', targetPort: 80, count: 1 },
      { protocol: 'udp', hostIp: '::1', hostPort: 7000, targetIp: 'fd42:7::2', targetPort: 9000, count: 2 },
    ]);
    expect(portProxies(ports, [attach('app', 'eth0', '10.89.7.2')]).map((p) => p.targetIp)).toEqual(['10.89.7.2', '10.89.7.2']);
    expect(portProxies(ports, [])).toEqual([]);
    expect(portProxies([parsePublish('8080:80')], dual)).toEqual([]);
  });

  it('builds the monitor\'s --proxy arguments', () => {
    expect(proxyMonitorArgs([
      { protocol: 'tcp', hostIp: '::1', hostPort: 8080, targetIp: 'fd42:7::2', targetPort: 80, count: 1 },
      { protocol: 'udp', hostIp: '::1', hostPort: 7000, targetIp: '10.89.7.2', targetPort: 9000, count: 2 },
    ])).toEqual(['--proxy', 'tcp,::1,8080,fd42:7::2,80,1', '--proxy', 'udp,::1,7000,10.89.7.2,9000,2']);
    expect(proxyMonitorArgs([])).toEqual([]);
  });

  it(`refuses more than ${PROXY_LISTENERS_MAX} proxied ports per container, naming the mapping`, () => {
    expect(() => assertProxyLimits([parsePublish('[::1]:8000-8031:8000-8031'), parsePublish('[::1]:9000-9031:9000-9031/udp'), parsePublish('7000-7999:7000-7999')])).not.toThrow();
    expect(() => assertProxyLimits([parsePublish('[::1]:8000-8031:8000-8031'), parsePublish('[::1]:9000-9032:9000-9032/udp')]))
      .toThrow(`-p [::1]:9000-9032->9000-9032/udp: at most ${PROXY_LISTENERS_MAX} ports can be published on the IPv6 loopback (::1) per container`);
  });
});

describe('host ports on IPv6 addresses', () => {
  // [::1]:8080 LISTEN (inode 6161), [fd00::5]:9090 LISTEN, [::]:1883 LISTEN; UDP [::1]:5353.
  const tcp6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6161 1 0 100 0 0 10 0',
    '   1: 000000FD000000000000000005000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6262 1 0 100 0 0 10 0',
    '   2: 00000000000000000000000000000000:075B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6363 1 0 100 0 0 10 0',
  ].join('\n');
  const udp6 = ['  sl  local_address remote_address st', '   0: 00000000000000000000000001000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 6464 2 0 0'].join('\n');

  it('reads /proc/net/*6 addresses, so a port held on ::1 is refused for [::1] (any spelling) but not for another address', () => {
    const h = variantHost(undefined, { 'proc/net/tcp6': tcp6, 'proc/net/udp6': udp6 });
    try {
      expect(() => assertHostPortsFree([parsePublish('[::1]:8080:80')], [], h.host)).toThrow('host port 8080/tcp (-p [::1]:8080->80/tcp) is already in use');
      expect(() => assertHostPortsFree([parsePublish('[0::1]:8080:80')], [], h.host)).toThrow(/host port 8080\/tcp/);
      expect(() => assertHostPortsFree([parsePublish('[::1]:5353:53/udp')], [], h.host)).toThrow(/host port 5353\/udp/);
      expect(() => assertHostPortsFree([parsePublish('[fd00::5]:9090:80')], [], h.host)).toThrow(/host port 9090\/tcp/);
      expect(() => assertHostPortsFree([parsePublish('[::1]:9090:80')], [], h.host)).not.toThrow();
      expect(() => assertHostPortsFree([parsePublish('127.0.0.1:8080:80')], [], h.host)).not.toThrow();
      // [::] holds the port on every address, and a mapping on every address clashes with any holder.
      expect(() => assertHostPortsFree([parsePublish('[::1]:1883:1883')], [], h.host)).toThrow(/host port 1883\/tcp/);
      expect(() => assertHostPortsFree([parsePublish('[::]:9090:80')], [], h.host)).toThrow(/host port 9090\/tcp/);
    } finally {
      h.cleanup();
    }
  });
});
