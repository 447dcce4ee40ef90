import crypto from 'node:crypto';
import fs from 'node:fs';
import { BerthError } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import { readHostText } from '../host/read.js';
import { NetworkRecords } from '../store/networks.js';
import type { StateStore } from '../store/store.js';
import { BRIDGE_NAME, validateBridgeOptions } from './bridge-options.js';
import { allocateAddress, claimAddress, DEFAULT_BRIDGE_SUBNET, parseProcNetRoute, planSubnet, type SubnetRequest, type TakenSubnet } from './ipam.js';
import { parseCidr } from './ipv4.js';
import { leaseAddress6, parseCidr6, parseProcIpv6Route, planSubnet6, type Ipv6Plan, type TakenSubnet6 } from './ipv6.js';
import type { Attachment } from './netavark.js';
import type { SubnetClaims } from './subnet-claims.js';
import type { Lease, NetworkDefinition } from './types.js';

/** Older than any create takes (rootfs included, on an SD card): a lease this old without a container is an orphan. */
export const ORPHAN_AGE_MS = 10 * 60_000;

/** docker's name for the default network, created on first use. */
export const DEFAULT_NETWORK = 'bridge';

const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export interface CreateNetworkRequest extends SubnetRequest {
  readonly name: string;
  readonly driver?: string;
  readonly internal?: boolean;
  readonly labels?: Readonly<Record<string, string>>;
  readonly options?: Readonly<Record<string, string>>;
  /** Dual-stack (`--ipv6`): an IPv6 subnet too, `ipv6Subnet` or a random ULA /64. */
  readonly ipv6?: boolean;
  /** The IPv6 `--subnet`/`--gateway`; only with `ipv6`. */
  readonly ipv6Subnet?: string;
  readonly ipv6Gateway?: string;
}

/**
 * Network definitions and address leases over the state store: what `berth network` manages and what
 * a container's attachment is made from. Pure bookkeeping, no kernel state: creating a network writes
 * one row (the bridge appears when netavark attaches the first container), so a crash at any point
 * leaves either a whole network or none. Every read-check-write runs in one store transaction.
 */
export class NetworkService {
  readonly records: NetworkRecords;

  /** `claims`: the host-wide subnet claims shared with other state roots (absent: this root is alone, as in unit tests). */
  constructor(store: StateStore, private readonly host: HostPaths, private readonly claims?: SubnetClaims) {
    this.records = new NetworkRecords(store);
  }

  /**
   * Creates a network. Refuses (`conflict`) a name in use or a subnet overlapping another network or a
   * host route; (`resource`) when the pool has no free subnet left. `bridge` is the only driver.
   */
  create(req: CreateNetworkRequest): NetworkDefinition {
    if (!NETWORK_NAME.test(req.name)) throw new BerthError('invalid', `invalid network name "${req.name}": use 1–128 characters from [a-zA-Z0-9_.-], starting with a letter or digit`);
    const driver = req.driver ?? 'bridge';
    if (driver !== 'bridge') throw new BerthError('invalid', `--driver ${driver}: only the bridge driver is supported`);
    validateBridgeOptions(req.options ?? {}, (k) => `--opt ${k}`);
    if (['host', 'none', 'private'].includes(req.name)) throw new BerthError('invalid', `"${req.name}" is a network mode, not a network name`);
    return this.records.store.transaction(() => {
      if (this.records.byName(req.name)) throw new BerthError('conflict', `network with name ${req.name} already exists`, { hint: `berth network rm ${req.name}, or choose another name` });
      const id = crypto.randomBytes(32).toString('hex');
      const bridge = this.bridgeName(req, id);
      // The IPv6 half first: its refusals must come before the IPv4 subnet is claimed host-wide.
      const v6 = this.claimIpv6(req, id);
      let plan: ReturnType<typeof planSubnet>;
      try {
        plan = this.claimSubnet(req, id);
      } catch (err) {
        if (v6) this.claims?.release(v6.subnet, id);
        throw err;
      }
      const def: NetworkDefinition = {
        id, name: req.name, driver: 'bridge', ...plan, ...(v6 && { ipv6Subnet: v6.subnet, ipv6Gateway: v6.gateway }), internal: req.internal === true,
        // docker: containers on the default bridge do not resolve each other's names; on user networks they do.
        dnsEnabled: req.name !== DEFAULT_NETWORK,
        bridge, labels: { ...req.labels }, options: { ...req.options }, createdAt: Date.now(),
      };
      try {
        this.records.insert(def);
      } catch (err) {
        this.releaseClaims(def);
        throw err;
      }
      return def;
    });
  }

  /**
   * The new network's bridge device: docker's `com.docker.network.bridge.name` when given, else
   * `br-<id>`. A given name must be no other network's bridge and no interface the host has: netavark
   * would take an existing one over and delete it with the network's last container.
   */
  private bridgeName(req: CreateNetworkRequest, id: string): string {
    const name = req.options?.[BRIDGE_NAME];
    if (name === undefined) return `br-${id.slice(0, 12)}`;
    const other = this.records.list().find((n) => n.bridge === name);
    if (other) throw new BerthError('conflict', `--opt ${BRIDGE_NAME}=${name}: network ${other.name} already uses that bridge`);
    if (fs.existsSync(this.host.resolve(`/sys/class/net/${name}`))) {
      throw new BerthError('conflict', `--opt ${BRIDGE_NAME}=${name}: the host already has an interface of that name`, { hint: 'berth makes the bridge itself (and removes it with the last container): choose an unused name' });
    }
    return name;
  }

  /**
   * Plans the new network's subnet and claims it host-wide. Another root may claim the planned subnet
   * between the read and the claim: then the plan is made again with its claim seen (an explicit
   * `--subnet` then overlaps it and is refused naming it).
   */
  private claimSubnet(req: CreateNetworkRequest, id: string): ReturnType<typeof planSubnet> {
    for (;;) {
      const plan = planSubnet(req, [...this.takenSubnets(), ...(this.claims?.taken() ?? [])], undefined, req.name === DEFAULT_NETWORK ? DEFAULT_BRIDGE_SUBNET : undefined);
      if (!this.claims || this.claims.claim(plan.subnet, id, req.name)) return plan;
    }
  }

  /**
   * Plans the IPv6 half (see {@link planIpv6}) and claims its subnet host-wide, as {@link claimSubnet}
   * does the IPv4 one: a lost race re-plans with the winner's claim seen (a random /64 is drawn again;
   * an explicit subnet is then refused naming the other root's network).
   */
  private claimIpv6(req: CreateNetworkRequest, id: string): Ipv6Plan | undefined {
    for (;;) {
      const plan = this.planIpv6(req);
      if (!plan || !this.claims || this.claims.claim(plan.subnet, id, req.name)) return plan;
    }
  }

  /** This network's host-wide claims go (after its removal, or a failed insert). */
  private releaseClaims(n: NetworkDefinition): void {
    this.claims?.release(n.subnet, n.id);
    if (n.ipv6Subnet !== undefined) this.claims?.release(n.ipv6Subnet, n.id);
  }

  /**
   * The IPv6 half of a dual-stack network, or undefined. IPv6 addresses without `--ipv6` are refused, as
   * docker does, rather than dropped. Taken: other networks' v6 subnets, the host's v6 routes, and
   * other state roots' claims (which cover their networks before any bridge is up).
   */
  private planIpv6(req: CreateNetworkRequest): Ipv6Plan | undefined {
    if (!req.ipv6) {
      const given = req.ipv6Subnet ?? req.ipv6Gateway;
      if (given !== undefined) throw new BerthError('usage', `${given} is an IPv6 address: the network needs --ipv6 (compose: enable_ipv6: true)`);
      return undefined;
    }
    const nets = this.records.list();
    const bridges = new Set(nets.map((n) => n.bridge));
    const taken: TakenSubnet6[] = [
      ...nets.flatMap((n) => (n.ipv6Subnet === undefined ? [] : [{ cidr: parseCidr6(n.ipv6Subnet, 'subnet'), owner: `network "${n.name}"` }])),
      ...parseProcIpv6Route(readHostText(this.host, '/proc/net/ipv6_route') ?? '').filter((r) => !bridges.has(r.device ?? '')),
      ...(this.claims?.taken6() ?? []),
    ];
    return planSubnet6({ ...(req.ipv6Subnet !== undefined && { subnet: req.ipv6Subnet }), ...(req.ipv6Gateway !== undefined && { gateway: req.ipv6Gateway }) }, taken);
  }

  /**
   * Claims `n`'s subnet host-wide again (before its bridge comes up, and at agent start: a reboot clears
   * the claims). Refuses (`conflict`) a subnet another live state root holds, naming it.
   */
  claimHost(n: NetworkDefinition): void {
    this.claims?.assertClaim(n.subnet, n.id, n.name);
    if (n.ipv6Subnet !== undefined) this.claims?.assertClaim(n.ipv6Subnet, n.id, n.name);
  }

  /** Other networks' subnets and the host's own routes, except those of berth's own bridges. */
  private takenSubnets(): TakenSubnet[] {
    const nets = this.records.list();
    const bridges = new Set(nets.map((n) => n.bridge));
    const routes = parseProcNetRoute(readHostText(this.host, '/proc/net/route') ?? '').filter((r) => !bridges.has(r.device ?? ''));
    return [...nets.map((n) => ({ cidr: parseCidr(n.subnet, 'subnet'), owner: `network "${n.name}"` })), ...routes];
  }

  /** By name, full id or unique id prefix; `notFound` otherwise. */
  find(nameOrId: string): NetworkDefinition {
    const byName = this.records.byName(nameOrId);
    if (byName) return byName;
    if (/^[a-f0-9]{3,64}$/.test(nameOrId)) {
      const m = this.records.byIdPrefix(nameOrId);
      if (m.length === 1) return m[0]!;
      if (m.length > 1) throw new BerthError('conflict', `"${nameOrId}" matches several networks; use more of the id`);
    }
    throw new BerthError('notFound', `network ${nameOrId} not found`, { hint: 'berth network ls lists them; berth network create makes one' });
  }

  /** The default `bridge` network, created on first use (in one transaction with the lookup). */
  ensureDefault(): NetworkDefinition {
    return this.records.byName(DEFAULT_NETWORK) ?? this.create({ name: DEFAULT_NETWORK });
  }

  list(): NetworkDefinition[] {
    return this.records.list();
  }

  leases(networkId: string): Lease[] {
    return this.records.leasesOf(networkId);
  }

  /**
   * Drops the leases of creates that died before their container's row was written (kill -9 mid-create).
   * Only leases older than {@link ORPHAN_AGE_MS}: a create in flight in another process holds a young one.
   */
  private dropOrphans(): void {
    this.records.dropOrphanLeases(Date.now() - ORPHAN_AGE_MS);
  }

  /** Removes a network no container uses; refuses (`conflict`) naming the containers that do. */
  remove(nameOrId: string): NetworkDefinition {
    return this.records.store.transaction(() => {
      this.dropOrphans();
      const n = this.find(nameOrId);
      const users = this.records.leasesOf(n.id);
      if (users.length > 0) {
        throw new BerthError('conflict', `network ${n.name} is in use by container${users.length === 1 ? '' : 's'} ${users.map((l) => l.names[0] ?? l.containerId.slice(0, 12)).join(', ')}`, {
          hint: 'remove those containers first (berth rm -f NAME)',
        });
      }
      this.records.remove(n.id);
      this.releaseClaims(n);
      return n;
    });
  }

  /** Removes every network without containers except the default `bridge` (docker keeps its predefined ones). */
  prune(): NetworkDefinition[] {
    return this.records.store.transaction(() => {
      this.dropOrphans();
      const gone = this.records.list().filter((n) => n.name !== DEFAULT_NETWORK && this.records.leasesOf(n.id).length === 0);
      for (const n of gone) {
        this.records.remove(n.id);
        this.releaseClaims(n);
      }
      return gone;
    });
  }

  /**
   * Leases an address on `network` (a name, id, or `bridge` for the default) for a container, with the
   * DNS names it answers to: `ip` when given (checked: in the range, free), else the lowest free one; the
   * interface is the lowest free ethN of the container. Refuses (`conflict`) a container already on the
   * network. One transaction: two containers created at once get different addresses.
   */
  lease(containerId: string, network: string, names: readonly string[], ip?: string, ip6?: string): Attachment {
    return this.records.store.transaction(() => {
      const n = network === DEFAULT_NETWORK ? this.ensureDefault() : this.find(network);
      this.dropOrphans();
      const mine = this.records.leasesOfContainer(containerId);
      if (mine.some((l) => l.networkId === n.id)) throw new BerthError('conflict', `container ${names[0] ?? containerId.slice(0, 12)} is already connected to network ${n.name}`);
      const others = this.records.leasesOf(n.id);
      const used = new Set(others.map((l) => l.ip));
      if (ip6 !== undefined && n.ipv6Subnet === undefined) {
        throw new BerthError('invalid', `--ip6 ${ip6}: network ${n.name} has no IPv6 subnet`, { hint: 'create the network with --ipv6 (compose: enable_ipv6: true)' });
      }
      const v6 = n.ipv6Subnet !== undefined && n.ipv6Gateway !== undefined
        ? leaseAddress6({ name: n.name, ipv6Subnet: n.ipv6Subnet, ipv6Gateway: n.ipv6Gateway }, new Set(others.flatMap((l) => (l.ip6 === undefined ? [] : [l.ip6]))), ip6)
        : undefined;
      const ifaces = new Set(mine.map((l) => l.interfaceName));
      let i = 0;
      while (ifaces.has(`eth${i}`)) i++;
      const lease: Lease = {
        networkId: n.id, containerId, ip: ip === undefined ? allocateAddress(n, used) : claimAddress(n, used, ip), ...(v6 !== undefined && { ip6: v6 }), names: [...new Set(names)], interfaceName: `eth${i}`,
      };
      this.records.insertLease(lease, Date.now());
      return { network: n, lease, interfaceName: lease.interfaceName };
    });
  }

  /** A container's attachments in interface order (eth0 first). */
  attachmentsOf(containerId: string): Attachment[] {
    return this.records.leasesOfContainer(containerId).map((lease) => {
      const network = this.records.get(lease.networkId);
      if (!network) throw new BerthError('internal', `lease of container ${containerId} names a missing network ${lease.networkId}`);
      return { network, lease, interfaceName: lease.interfaceName };
    });
  }

  /** The container's attachment to `network` (name or id); `notFound` naming both when it has none. */
  attachment(containerId: string, containerName: string, network: string): Attachment {
    const n = this.find(network);
    const a = this.attachmentsOf(containerId).find((x) => x.network.id === n.id);
    if (!a) throw new BerthError('notFound', `container ${containerName} is not connected to network ${n.name}`);
    return a;
  }

  /** Forgets one lease (after its interface is torn down). */
  releaseOne(containerId: string, networkId: string): void {
    this.records.removeLease(networkId, containerId);
  }

  /** Forgets a container's leases (after its networking is torn down). */
  release(containerId: string): void {
    this.records.removeLeasesOfContainer(containerId);
  }
}
