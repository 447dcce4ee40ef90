import { describe, expect, it } from 'vitest';
import { netavarkDocument, type Attachment } from '../../src/network/netavark.js';
import { withHostBinding } from '../../src/network/bridge-options.js';
import { assertPublishable, netavarkHostIp, portChainOf, rulesToDelete, unwantedRules } from '../../src/network/port-families.js';
import type { NetworkDefinition, PortMapping } from '../../src/network/types.js';

const CID = 'a'.repeat(64);
const NID = 'f'.repeat(64);
const port = (hostIp: string, hostPort = 45601, count = 1): PortMapping => ({ hostIp, hostPort, containerPort: 80, count, protocol: 'tcp' });

// What netavark 1.4 made (iptables -S, nat table) for one dual-stack container publishing 45601 with an
// empty host_ip, beside another container's 45601/udp and a third's 45602 (listings taken on this machine, names shortened).
const HOSTPORT_V4 = [
  '-N NETAVARK-HOSTPORT-DNAT',
  `-A NETAVARK-HOSTPORT-DNAT -p udp -m udp --dport 45601 -m comment --comment "dnat name: ${NID} id: ${'b'.repeat(64)}" -j NETAVARK-DN-53BFA3AFE01E4`,
  `-A NETAVARK-HOSTPORT-DNAT -p tcp -m tcp --dport 45602 -m comment --comment "dnat name: ${NID} id: ${'c'.repeat(64)}" -j NETAVARK-DN-53BFA3AFE01E4`,
  `-A NETAVARK-HOSTPORT-DNAT -p tcp -m tcp --dport 45601 -m comment --comment "dnat name: ${NID} id: ${CID}" -j NETAVARK-DN-53BFA3AFE01E4`,
].join('\n');
const CHAIN_V4 = [
  '-N NETAVARK-DN-53BFA3AFE01E4',
  '-A NETAVARK-DN-53BFA3AFE01E4 -s 10.250.99.0/24 -p tcp -m tcp --dport 45601 -j NETAVARK-HOSTPORT-SETMARK',
  '-A NETAVARK-DN-53BFA3AFE01E4 -s 127.0.0.1/32 -p tcp -m tcp --dport 45601 -j NETAVARK-HOSTPORT-SETMARK',
  '-A NETAVARK-DN-53BFA3AFE01E4 -p tcp -m tcp --dport 45601 -j DNAT --to-destination 10.250.99.2:80',
  '-A NETAVARK-DN-53BFA3AFE01E4 -s 10.250.99.0/24 -p udp -m udp --dport 45601 -j NETAVARK-HOSTPORT-SETMARK',
  '-A NETAVARK-DN-53BFA3AFE01E4 -p udp -m udp --dport 45601 -j DNAT --to-destination 10.250.99.4:80',
  '-A NETAVARK-DN-53BFA3AFE01E4 -s 10.250.99.0/24 -p tcp -m tcp --dport 45602 -j NETAVARK-HOSTPORT-SETMARK',
  '-A NETAVARK-DN-53BFA3AFE01E4 -s 10.250.99.0/24 -d 127.0.0.1/32 -p tcp -m tcp --dport 45601 -j NETAVARK-HOSTPORT-SETMARK',
  '-A NETAVARK-DN-53BFA3AFE01E4 -p tcp -m tcp --dport 45602 -j DNAT --to-destination 10.250.99.3:80',
].join('\n');
const CHAIN_V6 = [
  '-A NETAVARK-DN-53BFA3AFE01E4 -s fd77:1::/64 -p tcp -m tcp --dport 45601:45602 -j NETAVARK-HOSTPORT-SETMARK',
  '-A NETAVARK-DN-53BFA3AFE01E4 -s ::1/128 -p tcp -m tcp --dport 45601:45602 -j NETAVARK-HOSTPORT-SETMARK',
  '-A NETAVARK-DN-53BFA3AFE01E4 -p tcp -m tcp --dport 45601:45602 -j DNAT --to-destination [fd77:1::2]:80-81/45601',
].join('\n');

describe('wildcard published ports kept to one address family', () => {
  it('go to netavark as every address, and name the other family\'s rules to drop (none for a family the container lacks)', () => {
    expect(['', '0.0.0.0', '::', '127.0.0.1', 'fd00::5'].map(netavarkHostIp)).toEqual(['', '', '', '127.0.0.1', 'fd00::5']);
    const ports = [port(''), port('0.0.0.0', 1), port('::', 2), port('127.0.0.1', 3)];
    expect(unwantedRules(CID, NID, '10.250.99.2', 'fd77:1::2', ports).map((u) => [u.family, u.containerIp, u.port.hostPort])).toEqual([[6, 'fd77:1::2', 1], [4, '10.250.99.2', 2]]);
    expect(unwantedRules(CID, NID, '10.250.99.2', undefined, ports).map((u) => [u.family, u.port.hostPort])).toEqual([[4, 2]]);
    const net = { id: NID, name: 'n', driver: 'bridge', subnet: '10.250.99.0/24', gateway: '10.250.99.1', internal: false, dnsEnabled: false, bridge: 'br-x', labels: {}, options: {}, createdAt: 0 } as NetworkDefinition;
    const doc = netavarkDocument({ containerId: CID, containerName: 'c', attachments: [{ network: net, lease: { networkId: NID, containerId: CID, ip: '10.250.99.2', names: ['c'], interfaceName: 'eth0' }, interfaceName: 'eth0' }], ports: [port('::'), port('0.0.0.0', 2)] }) as { port_mappings: Array<{ host_ip: string }> };
    expect(doc.port_mappings.map((m) => m.host_ip)).toEqual(['', '']);
  });

  it('find the container\'s port chain by netavark\'s comment and only its mapping\'s rules without a destination', () => {
    const [v4] = unwantedRules(CID, NID, '10.250.99.2', 'fd77:1::2', [port('::')]);
    const chain = portChainOf(v4!, HOSTPORT_V4, '-p [::]:45601:80');
    expect(chain).toBe('NETAVARK-DN-53BFA3AFE01E4');
    expect(rulesToDelete(v4!, chain, CHAIN_V4)).toEqual(CHAIN_V4.split('\n').slice(1, 4));

    const [v6] = unwantedRules(CID, NID, '10.250.99.2', 'fd77:1::2', [port('0.0.0.0', 45601, 2)]);
    expect(rulesToDelete(v6!, chain, CHAIN_V6)).toEqual(CHAIN_V6.split('\n'));
    // Another container's jump is not ours: a missing rule is an error naming the mapping, not a silent both-family publish.
    const [other] = unwantedRules('d'.repeat(64), NID, '10.250.99.9', 'fd77:1::9', [port('::')]);
    expect(() => portChainOf(other!, HOSTPORT_V4, '-p [::]:45601:80')).toThrow("-p [::]:45601:80: netavark's port rule for it was not found, so it cannot be kept to IPv6");
  });

  it('refuse [::] for a container without an IPv6 address and any port on an internal network', () => {
    const att = (internal: boolean, ip6?: string): Attachment => ({
      network: { id: NID, name: internal ? 'inner' : 'lan', internal } as NetworkDefinition,
      lease: { networkId: NID, containerId: CID, ip: '10.250.99.2', ...(ip6 !== undefined && { ip6 }), names: ['c'], interfaceName: 'eth0' },
      interfaceName: 'eth0',
    });
    expect(() => assertPublishable([port('::')], [att(false)], 'web')).toThrow('-p [::]:45601->80/tcp publishes on IPv6 only, and web has no IPv6 address (lan: IPv4 only)');
    expect(() => assertPublishable([port('::')], [att(false, 'fd77:1::2')], 'web')).not.toThrow();
    expect(() => assertPublishable([port('0.0.0.0'), port('')], [att(false)], 'web')).not.toThrow();
    expect(() => assertPublishable([port('')], [att(true)], 'web')).toThrow('network inner is internal: it cannot publish ports (-p)');
  });

  it('bind ports without a host address to host_binding_ipv4 (0.0.0.0 being every address)', () => {
    const ports = [port(''), port('::', 8081)];
    expect(withHostBinding(ports, { 'com.docker.network.bridge.host_binding_ipv4': '192.0.2.7' }).map((p) => p.hostIp)).toEqual(['192.0.2.7', '::']);
    expect(withHostBinding(ports, { 'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0' }).map((p) => p.hostIp)).toEqual(['', '::']);
    expect(withHostBinding(ports, {}).map((p) => p.hostIp)).toEqual(['', '::']);
  });
});
