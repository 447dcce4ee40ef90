import type { Attachment } from './netavark.js';
import type { Lease, NetworkDefinition, PortMapping } from './types.js';

/**
 * A network's IPAM entries in docker's shape, IPv4 first: the one rendering of its subnets, which both
 * `inspect` (IPAM.Config) and `ls` (its SUBNET column) show.
 */
export function ipamConfig(n: NetworkDefinition): Array<{ Subnet: string; Gateway: string; IPRange?: string }> {
  return [
    { Subnet: n.subnet, Gateway: n.gateway, ...(n.ipRange !== undefined && { IPRange: n.ipRange }) },
    ...(n.ipv6Subnet !== undefined && n.ipv6Gateway !== undefined ? [{ Subnet: n.ipv6Subnet, Gateway: n.ipv6Gateway }] : []),
  ];
}

/** docker's `network inspect` shape for one network (the fields that apply to a bridge). */
export function inspectNetwork(n: NetworkDefinition, leases: readonly Lease[]): object {
  const prefix = n.subnet.split('/')[1];
  const prefix6 = n.ipv6Subnet?.split('/')[1];
  return {
    Name: n.name,
    Id: n.id,
    Created: new Date(n.createdAt).toISOString(),
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: n.ipv6Subnet !== undefined,
    IPAM: {
      Driver: 'default', Options: {},
      Config: ipamConfig(n),
    },
    Internal: n.internal,
    Attachable: false,
    Containers: Object.fromEntries(leases.map((l) => [l.containerId, { Name: l.names[0] ?? '', IPv4Address: `${l.ip}/${prefix}`, IPv6Address: l.ip6 !== undefined ? `${l.ip6}/${prefix6}` : '' }])),
    Options: { 'com.docker.network.bridge.name': n.bridge, ...n.options },
    Labels: n.labels,
    DNSEnabled: n.dnsEnabled,
  };
}

/** One published port per entry, ranges expanded: the Engine API's container-list shape (`docker ps` JSON's Ports). */
export function publishedPorts(ports: readonly PortMapping[]): Array<{ IP: string; PrivatePort: number; PublicPort: number; Type: 'tcp' | 'udp' }> {
  return ports.flatMap((p) => Array.from({ length: p.count }, (_, i) => ({ IP: p.hostIp === '' ? '0.0.0.0' : p.hostIp, PrivatePort: p.containerPort + i, PublicPort: p.hostPort + i, Type: p.protocol })));
}

/** docker's `NetworkSettings.Ports` keys and values: `"80/tcp": [{HostIp, HostPort}]`, one key per container port. */
export function portBindings(ports: readonly PortMapping[]): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of publishedPorts(ports)) (out[`${p.PrivatePort}/${p.Type}`] ??= []).push({ HostIp: p.IP, HostPort: String(p.PublicPort) });
  return out;
}

/** docker's `NetworkSettings` for a container: its published ports and its address on each network. */
export function containerNetworkSettings(attachments: readonly Attachment[], ports: readonly PortMapping[]): object {
  return {
    Ports: portBindings(ports),
    Networks: Object.fromEntries(attachments.map(({ network: n, lease }) => [n.name, {
      NetworkID: n.id,
      IPAddress: lease.ip,
      IPPrefixLen: Number(n.subnet.split('/')[1]),
      Gateway: n.gateway,
      GlobalIPv6Address: lease.ip6 ?? '',
      GlobalIPv6PrefixLen: lease.ip6 !== undefined ? Number(n.ipv6Subnet!.split('/')[1]) : 0,
      IPv6Gateway: n.ipv6Gateway ?? '',
      Aliases: lease.names.slice(1),
      DNSNames: n.dnsEnabled ? lease.names : [],
    }])),
  };
}

/** `berth port` lines: `80/tcp -> 0.0.0.0:8080`, sorted as docker prints them. */
export function portLines(ports: readonly PortMapping[]): string[] {
  return Object.entries(portBindings(ports)).flatMap(([cport, binds]) => binds.map((b) => `${cport} -> ${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp}:${b.HostPort}`));
}
