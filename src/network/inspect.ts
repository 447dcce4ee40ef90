import type { Lease, NetworkDefinition } from './types.js';

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
