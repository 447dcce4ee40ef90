import type { Attachment } from './netavark.js';
import type { Lease, NetworkDefinition, PortMapping } from './types.js';

/** docker's `network inspect` shape for one network (the fields that apply to a bridge). */
export function inspectNetwork(n: NetworkDefinition, leases: readonly Lease[]): object {
  const prefix = n.subnet.split('/')[1];
  return {
    Name: n.name,
    Id: n.id,
    Created: new Date(n.createdAt).toISOString(),
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: n.subnet, Gateway: n.gateway, ...(n.ipRange !== undefined && { IPRange: n.ipRange }) }] },
    Internal: n.internal,
    Attachable: false,
    Containers: Object.fromEntries(leases.map((l) => [l.containerId, { Name: l.names[0] ?? '', IPv4Address: `${l.ip}/${prefix}`, IPv6Address: '' }])),
    Options: { 'com.docker.network.bridge.name': n.bridge, ...n.options },
    Labels: n.labels,
    DNSEnabled: n.dnsEnabled,
  };
}

/** docker's `NetworkSettings.Ports` keys and values: `"80/tcp": [{HostIp, HostPort}]`, one key per container port. */
export function portBindings(ports: readonly PortMapping[]): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of ports) {
    for (let i = 0; i < p.count; i++) {
      (out[`${p.containerPort + i}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp === '' ? '0.0.0.0' : p.hostIp, HostPort: String(p.hostPort + i) });
    }
  }
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
      Aliases: lease.names.slice(1),
      DNSNames: n.dnsEnabled ? lease.names : [],
    }])),
  };
}

/** `berth port` lines: `80/tcp -> 0.0.0.0:8080`, sorted as docker prints them. */
export function portLines(ports: readonly PortMapping[]): string[] {
  return Object.entries(portBindings(ports)).flatMap(([cport, binds]) => binds.map((b) => `${cport} -> ${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp}:${b.HostPort}`));
}
