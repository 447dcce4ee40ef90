import type { Lease, NetworkDefinition } from '../network/types.js';
import type { StateStore } from './store.js';

interface NetworkRow {
  id: string;
  name: string;
  driver: 'bridge';
  subnet: string;
  gateway: string;
  ip_range: string | null;
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
  names: string;
}

const fromRow = (r: NetworkRow): NetworkDefinition => ({
  id: r.id,
  name: r.name,
  driver: r.driver,
  subnet: r.subnet,
  gateway: r.gateway,
  ...(r.ip_range !== null && { ipRange: r.ip_range }),
  internal: r.internal !== 0,
  dnsEnabled: r.dns_enabled !== 0,
  bridge: r.bridge,
  labels: JSON.parse(r.labels) as Record<string, string>,
  options: JSON.parse(r.options) as Record<string, string>,
  createdAt: r.created_at,
});

const leaseFromRow = (r: LeaseRow): Lease => ({ networkId: r.network_id, containerId: r.container_id, ip: r.ip, names: JSON.parse(r.names) as string[] });

/**
 * Typed access to the networks and network_leases tables; the schema lives in migrations.ts. Callers
 * that read-then-write (IPAM) wrap both in `store.transaction` so the check and the insert are one.
 */
export class NetworkRecords {
  constructor(readonly store: StateStore) {}

  insert(n: NetworkDefinition): void {
    this.store.db
      .prepare('INSERT INTO networks (id, name, driver, subnet, gateway, ip_range, internal, dns_enabled, bridge, labels, options, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(n.id, n.name, n.driver, n.subnet, n.gateway, n.ipRange ?? null, n.internal ? 1 : 0, n.dnsEnabled ? 1 : 0, n.bridge, JSON.stringify(n.labels), JSON.stringify(n.options), n.createdAt);
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
    this.store.db.prepare('INSERT INTO network_leases (network_id, container_id, ip, names, leased_at) VALUES (?, ?, ?, ?, ?)').run(l.networkId, l.containerId, l.ip, JSON.stringify(l.names), at);
  }

  /** Drops leases made before `before` whose container has no row: left by a create killed midway. Returns how many. */
  dropOrphanLeases(before: number): number {
    return this.store.db.prepare('DELETE FROM network_leases WHERE leased_at < ? AND container_id NOT IN (SELECT id FROM containers)').run(before).changes;
  }

  leasesOf(networkId: string): Lease[] {
    return (this.store.db.prepare('SELECT * FROM network_leases WHERE network_id = ? ORDER BY ip').all(networkId) as LeaseRow[]).map(leaseFromRow);
  }

  leasesOfContainer(containerId: string): Lease[] {
    return (this.store.db.prepare('SELECT * FROM network_leases WHERE container_id = ?').all(containerId) as LeaseRow[]).map(leaseFromRow);
  }

  removeLeasesOfContainer(containerId: string): void {
    this.store.db.prepare('DELETE FROM network_leases WHERE container_id = ?').run(containerId);
  }
}
