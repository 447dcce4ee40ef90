import type { StateStore } from './store.js';

// The network model's persisted records (re-exported by src/network/types.ts, whose service owns the
// behaviour): defined here with their table, so the store imports nothing from the stages above it.

export type NetworkDriver = 'bridge';

export interface NetworkDefinition {
  /** 64 hex characters, random. */
  readonly id: string;
  /** Unique; docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
  readonly name: string;
  readonly driver: NetworkDriver;
  /** IPv4 CIDR, e.g. `10.89.0.0/24`. */
  readonly subnet: string;
  /** The bridge's address, inside `subnet`. */
  readonly gateway: string;
  /** Where container addresses are allocated from (docker's --ip-range); the whole subnet when absent. */
  readonly ipRange?: string;
  /** Dual-stack (`--ipv6`, compose enable_ipv6): the IPv6 subnet (canonical text, e.g. `fd12:3456:789a::/64`); absent: IPv4 only. */
  readonly ipv6Subnet?: string;
  /** The bridge's IPv6 address, inside ipv6Subnet; present exactly when ipv6Subnet is. */
  readonly ipv6Gateway?: string;
  /** No route out (no NAT, no published ports), as docker's --internal. */
  readonly internal: boolean;
  /** Container names resolve on this network (aardvark-dns on the gateway). False on the default `bridge`, as docker. */
  readonly dnsEnabled: boolean;
  /** The Linux bridge device: `br-` + the first 12 characters of the id (docker's spelling, 15 characters). */
  readonly bridge: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Driver options (`-o K=V`): `mtu` (or `com.docker.network.driver.mtu`) and `isolate` (default true). */
  readonly options: Readonly<Record<string, string>>;
  readonly createdAt: number;
}

/** A container's address on one network (a lease), as persisted. */
export interface Lease {
  readonly networkId: string;
  readonly containerId: string;
  /** Dotted IPv4. */
  readonly ip: string;
  /** Canonical IPv6 (RFC 5952), on a dual-stack network only. */
  readonly ip6?: string;
  /** Names the container answers to in the network's DNS (its name first, then aliases). */
  readonly names: readonly string[];
  /** The interface inside the container: eth0 for the network it was created on, the lowest free ethN for one connected later. */
  readonly interfaceName: string;
}

interface NetworkRow {
  id: string;
  name: string;
  driver: 'bridge';
  subnet: string;
  gateway: string;
  ip_range: string | null;
  ipv6_subnet: string | null;
  ipv6_gateway: string | null;
  internal: number;
  dns_enabled: number;
  bridge: string;
  labels: string;
  options: string;
  created_at: number;
}

interface LeaseRow {
  network_id: string;
  container_id: string;
  ip: string;
  ip6: string | null;
  names: string;
  interface: string;
}

const fromRow = (r: NetworkRow): NetworkDefinition => ({
  id: r.id,
  name: r.name,
  driver: r.driver,
  subnet: r.subnet,
  gateway: r.gateway,
  ...(r.ip_range !== null && { ipRange: r.ip_range }),
  ...(r.ipv6_subnet !== null && r.ipv6_gateway !== null && { ipv6Subnet: r.ipv6_subnet, ipv6Gateway: r.ipv6_gateway }),
  internal: r.internal !== 0,
  dnsEnabled: r.dns_enabled !== 0,
  bridge: r.bridge,
  labels: JSON.parse(r.labels) as Record<string, string>,
  options: JSON.parse(r.options) as Record<string, string>,
  createdAt: r.created_at,
});

const leaseFromRow = (r: LeaseRow): Lease => ({ networkId: r.network_id, containerId: r.container_id, ip: r.ip, ...(r.ip6 !== null && { ip6: r.ip6 }), names: JSON.parse(r.names) as string[], interfaceName: r.interface });

/**
 * Typed access to the networks and network_leases tables; the schema lives in migrations.ts. Callers
 * that read-then-write (IPAM) wrap both in `store.transaction` so the check and the insert are one.
 */
export class NetworkRecords {
  constructor(readonly store: StateStore) {}

  insert(n: NetworkDefinition): void {
    this.store.db
      .prepare('INSERT INTO networks (id, name, driver, subnet, gateway, ip_range, ipv6_subnet, ipv6_gateway, internal, dns_enabled, bridge, labels, options, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(n.id, n.name, n.driver, n.subnet, n.gateway, n.ipRange ?? null, n.ipv6Subnet ?? null, n.ipv6Gateway ?? null, n.internal ? 1 : 0, n.dnsEnabled ? 1 : 0, n.bridge, JSON.stringify(n.labels), JSON.stringify(n.options), n.createdAt);
  }

  byName(name: string): NetworkDefinition | undefined {
    const row = this.store.db.prepare('SELECT * FROM networks WHERE name = ?').get(name) as NetworkRow | undefined;
    return row && fromRow(row);
  }

  byIdPrefix(prefix: string): NetworkDefinition[] {
    return (this.store.db.prepare("SELECT * FROM networks WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at").all(`${prefix.replace(/[%_\\]/g, '\\$&')}%`) as NetworkRow[]).map(fromRow);
  }

  get(id: string): NetworkDefinition | undefined {
    const row = this.store.db.prepare('SELECT * FROM networks WHERE id = ?').get(id) as NetworkRow | undefined;
    return row && fromRow(row);
  }

  list(): NetworkDefinition[] {
    return (this.store.db.prepare('SELECT * FROM networks ORDER BY created_at, name').all() as NetworkRow[]).map(fromRow);
  }

  /** Deletes a network; its leases must be gone first (the foreign key refuses otherwise). */
  remove(id: string): void {
    this.store.db.prepare('DELETE FROM networks WHERE id = ?').run(id);
  }

  insertLease(l: Lease, at: number): void {
    this.store.db.prepare('INSERT INTO network_leases (network_id, container_id, ip, ip6, names, interface, leased_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(l.networkId, l.containerId, l.ip, l.ip6 ?? null, JSON.stringify(l.names), l.interfaceName, at);
  }

  /** Drops leases made before `before` whose container has no row: left by a create killed midway. Returns how many. */
  dropOrphanLeases(before: number): number {
    return this.store.db.prepare('DELETE FROM network_leases WHERE leased_at < ? AND container_id NOT IN (SELECT id FROM containers)').run(before).changes;
  }

  /** Every container id holding a lease, with its oldest lease's time (ms). */
  leaseHolders(): Array<{ containerId: string; leasedAt: number }> {
    return (this.store.db.prepare('SELECT container_id AS containerId, MIN(leased_at) AS leasedAt FROM network_leases GROUP BY container_id').all() as Array<{ containerId: string; leasedAt: number }>);
  }

  leasesOf(networkId: string): Lease[] {
    return (this.store.db.prepare('SELECT * FROM network_leases WHERE network_id = ? ORDER BY ip').all(networkId) as LeaseRow[]).map(leaseFromRow);
  }

  /** A container's leases in interface order (eth0, eth1 … eth10: by the number, not the text). */
  leasesOfContainer(containerId: string): Lease[] {
    return (this.store.db.prepare('SELECT * FROM network_leases WHERE container_id = ? ORDER BY CAST(substr(interface, 4) AS INTEGER)').all(containerId) as LeaseRow[]).map(leaseFromRow);
  }

  /** Forgets one lease (berth network disconnect). */
  removeLease(networkId: string, containerId: string): void {
    this.store.db.prepare('DELETE FROM network_leases WHERE network_id = ? AND container_id = ?').run(networkId, containerId);
  }

  removeLeasesOfContainer(containerId: string): void {
    this.store.db.prepare('DELETE FROM network_leases WHERE container_id = ?').run(containerId);
  }
}
