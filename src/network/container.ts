import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { writeFileAtomic } from '../host/fsync.js';
import type { HostPaths } from '../host/paths.js';
import { readResolverText, type ResolverSource } from './resolver-source.js';
import { stopOrphanAardvarks } from './aardvark-orphans.js';
import { guardNetworkDns, unguardNetworkDns } from './dns-guard.js';
import { hostsFile, resolvConf } from './etc-files.js';
import { assertHostPortsFree, resolveEphemeralPorts, type PublishedBy } from './host-ports.js';
import { isBridgeNetwork } from './mode.js';
import { withHostBinding } from './bridge-options.js';
import { assertPublishable } from './port-families.js';
import { netavarkSetup, netavarkTeardown, type Attachment, type NetavarkRequest, type NetavarkTool, type SetupResult } from './netavark.js';
import type { NetnsManager } from './netns.js';
import { assertProxyLimits, natPorts, needsProxy, portProxies, type PortProxy } from './port-proxy.js';
import { DEFAULT_NETWORK, ORPHAN_AGE_MS, type NetworkService } from './service.js';
import type { ExtraHost, PortMapping } from './types.js';

/** The networking parts of a container's options (a subset of RunOptions, so this module needs no runtime types). */
export interface ContainerNetworkOptions {
  readonly name: string;
  /** `host` | `none` | `private` | a network name (`bridge` = the default network). */
  readonly network: string;
  readonly hostname?: string;
  readonly ports?: readonly PortMapping[];
  readonly dns?: readonly string[];
  readonly dnsSearch?: readonly string[];
  readonly dnsOptions?: readonly string[];
  readonly networkAliases?: readonly string[];
  /** `--ip`/`--ip6`: static addresses on `network`. */
  readonly ipv4Address?: string;
  readonly ipv6Address?: string;
  /** Every bridge network joined, first = `network` (compose's per-service networks); absent = just `network`. */
  readonly endpoints?: ReadonlyArray<Endpoint>;
  readonly extraHosts?: readonly ExtraHost[];
}

/**
 * The networks a bridged container joins, in interface order: `endpoints` when given (its first entry
 * must be `network`), else `network` with `networkAliases` and `ipv4Address`.
 */
/** One network joined, with the container's extra names and static addresses on it. */
interface Endpoint {
  readonly network: string;
  readonly aliases: readonly string[];
  readonly ipv4Address?: string;
  readonly ipv6Address?: string;
}

export function endpointsOf(o: ContainerNetworkOptions): NonNullable<ContainerNetworkOptions['endpoints']> {
  if (o.endpoints === undefined || o.endpoints.length === 0) {
    return [{ network: o.network, aliases: o.networkAliases ?? [], ...(o.ipv4Address !== undefined && { ipv4Address: o.ipv4Address }), ...(o.ipv6Address !== undefined && { ipv6Address: o.ipv6Address }) }];
  }
  if (o.endpoints[0]!.network !== o.network) throw new BerthError('invalid', `the first network endpoint (${o.endpoints[0]!.network}) must be the container's network ${o.network}`);
  return o.endpoints;
}

/** `berth network connect`'s choices: extra DNS names and static addresses (docker's --alias, --ip, --ip6). */
export interface ConnectOptions {
  readonly aliases?: readonly string[];
  readonly ip?: string;
  readonly ip6?: string;
}

/** The "networking is up" marker's content: what was set up, for a teardown without the container's record. */
interface UpMarker {
  readonly ports: readonly PortMapping[];
  readonly result: SetupResult;
}

/** What {@link ContainerNetworking.reconcile} did: container ids torn down and released, and what failed. */
export interface NetworkReconcileReport {
  readonly tornDown: string[];
  readonly released: string[];
  /** Orphaned aardvark-dns processes stopped (see aardvark-orphans.ts). */
  readonly dnsStopped: number[];
  readonly problems: string[];
}

/** What the spec builder needs for a bridged container: the namespace to join and the /etc files to bind. */
export interface PreparedNetwork {
  readonly namespacePath: string;
  /** /etc/resolv.conf and /etc/hosts, bind-mounted from the container's directory. */
  readonly mounts: ReadonlyArray<{ readonly destination: string; readonly source: string }>;
  /** The ports with ephemeral host ports resolved: what to persist and to give netavark. */
  readonly ports: readonly PortMapping[];
}

export interface ContainerNetworkingOptions {
  readonly host: HostPaths;
  /** Where the servers of containers on networks without DNS come from (the host's /etc/resolv.conf unless named). */
  readonly resolver?: ResolverSource;
  readonly netns: NetnsManager;
  /** Found on first use, so hosts without netavark still run `--network none` containers. */
  readonly tool: () => NetavarkTool;
  /** tmpfs directory for "networking is up" markers (they must vanish with a reboot, as the netns does). */
  readonly runDir: string;
  /** tmpfs directory for the per-boot markers of networks whose DNS guard is in place (dns-guard.ts). */
  readonly dnsGuardDir: string;
}

/**
 * A container's networking over its life, for the engine: `prepare` at create (sync: lease, ports,
 * /etc files), `up` before each start (netns + netavark setup, once per boot), `down` after a failed
 * start, `release` at remove. Contract: after `release`, the container holds no lease, netns, veth,
 * firewall rule or DNS name; netavark removes the bridge and aardvark-dns with their last container.
 */
export class ContainerNetworking {
  constructor(readonly networks: NetworkService, private readonly opts: ContainerNetworkingOptions) {}

  /**
   * For a bridged container: checks and resolves its published ports (refusing a host port in use, by a
   * host process or another container, naming it), leases its address and writes its resolv.conf and
   * hosts into `dir`. Undefined for the other modes, which refuse -p/--dns/--add-host. On failure
   * nothing stays leased.
   */
  prepare(id: string, dir: string, o: ContainerNetworkOptions, others: readonly PublishedBy[]): PreparedNetwork | undefined {
    if (!isBridgeNetwork(o.network)) {
      const given: Array<[string, readonly unknown[] | undefined]> = [['-p/--publish', o.ports], ['--dns', o.dns], ['--add-host', o.extraHosts], ['--network-alias', o.networkAliases]];
      const flag = given.find(([, v]) => (v?.length ?? 0) > 0)?.[0];
      if (flag) throw new BerthError('invalid', `${flag} needs a bridge network, not --network ${o.network}`, { hint: 'use --network bridge (or a network from berth network create)' });
      return undefined;
    }
    const ports = resolveEphemeralPorts(o.ports ?? [], others, this.opts.host);
    assertHostPortsFree(ports, others, this.opts.host);
    assertProxyLimits(ports);
    try {
      // One lease per endpoint, in order (eth0, eth1 …); a refusal of any releases those made before it.
      const atts = endpointsOf(o).map((e) => this.leaseEndpoint(id, o.name, e));
      const bound = withHostBinding(ports, atts[0]!.network.options);
      assertPublishable(bound, atts, o.name);
      const first = atts[0]!;
      const files = { 'resolv.conf': this.resolvConfText(o, atts), hosts: hostsFile({ hostname: o.hostname ?? id.slice(0, 12), ip: first.lease.ip, extraHosts: o.extraHosts ?? [] }) };
      for (const [name, text] of Object.entries(files)) writeFileAtomic(path.join(dir, name), text, 0o644);
      return {
        namespacePath: this.opts.netns.pathOf(id),
        mounts: [{ destination: '/etc/resolv.conf', source: path.join(dir, 'resolv.conf') }, { destination: '/etc/hosts', source: path.join(dir, 'hosts') }],
        ports: bound,
      };
    } catch (err) {
      this.networks.release(id);
      throw err;
    }
  }

  /**
   * One endpoint's lease, with docker's refusals: aliases need DNS (the default bridge has none, so they
   * would be names nobody can look up), and a static address needs a user network.
   */
  private leaseEndpoint(id: string, name: string, e: Endpoint): Attachment {
    if (e.ipv4Address !== undefined && e.network === DEFAULT_NETWORK) {
      throw new BerthError('invalid', `--ip ${e.ipv4Address}: a static address needs a user network, not the default ${DEFAULT_NETWORK}`, { hint: 'berth network create --subnet CIDR NAME, then --network NAME --ip ADDRESS' });
    }
    const att = this.networks.lease(id, e.network, [name, ...e.aliases], e.ipv4Address, e.ipv6Address);
    if (!att.network.dnsEnabled && e.aliases.length > 0) throw new BerthError('invalid', `--network-alias needs a user network: ${att.network.name} has no DNS`, { hint: 'berth network create NAME, then --network NAME' });
    return att;
  }

  /** resolv.conf for a container on `atts`: every DNS-enabled network's aardvark-dns (on its gateway), else the host's servers. */
  private resolvConfText(o: ContainerNetworkOptions, atts: readonly Attachment[]): string {
    const dnsNets = atts.filter((a) => a.network.dnsEnabled);
    const hostText = readResolverText(this.opts.resolver ?? {}, this.opts.host);
    return resolvConf({
      ...(o.dns && { dns: o.dns }),
      ...(o.dnsSearch && { dnsSearch: o.dnsSearch }),
      ...(o.dnsOptions && { dnsOptions: o.dnsOptions }),
      networkDns: dnsNets.map((a) => a.network.gateway),
      searchDomains: dnsNets.length > 0 ? ['dns.podman'] : [],
      ...(hostText !== undefined && { hostResolvConf: hostText }),
    });
  }

  /**
   * Rewrites the container's resolv.conf for its networks now. In place, not by rename: a running
   * container has the file bind-mounted, and a rename would leave it reading the old inode.
   */
  private refreshResolvConf(id: string, dir: string, o: ContainerNetworkOptions): void {
    fs.writeFileSync(path.join(dir, 'resolv.conf'), this.resolvConfText(o, this.networks.attachmentsOf(id)));
  }

  /**
   * `berth network connect`: leases an address on `network` (`ip`/`ip6`, else the next free ones) with the
   * container's name and `aliases`, on the lowest free ethN. When the container's networking is up
   * (running, or stopped since it ran in this boot) the interface is wired at once through netavark;
   * otherwise it is only recorded, and {@link up} wires it with the others at the next start. Refuses
   * containers outside bridge networking (host, none, container:) as docker does. On failure the new
   * lease is dropped and the container's other networks are untouched.
   */
  async connect(id: string, dir: string, o: ContainerNetworkOptions, network: string, opts: ConnectOptions = {}): Promise<Attachment> {
    if (!isBridgeNetwork(o.network)) throw new BerthError('invalid', `container ${o.name} uses --network ${o.network}: it cannot be connected to a bridge network`, { hint: 'recreate it with --network bridge or a network name' });
    // The lease makes run --ip6's refusals: outside the subnet, an IPv4-only network, an address in use.
    const att = this.networks.lease(id, network, [o.name, ...(opts.aliases ?? [])], opts.ip, opts.ip6);
    try {
      if (!att.network.dnsEnabled && (opts.aliases?.length ?? 0) > 0) throw new BerthError('invalid', `--alias needs a user network: ${att.network.name} has no DNS`);
      if (this.isUp(id)) {
        await guardNetworkDns(this.opts.tool(), att.network, this.opts.dnsGuardDir);
        await netavarkSetup(this.opts.tool(), this.opts.netns.pathOf(id), this.request(id, o, [att]));
      }
    } catch (err) {
      this.networks.releaseOne(id, att.network.id);
      throw err;
    }
    this.refreshResolvConf(id, dir, o);
    return att;
  }

  /**
   * `berth network disconnect`: unwires the container's interface on `network` when its networking is
   * up, then forgets the lease. `force` (docker's -f): a failing netavark teardown (state already gone,
   * e.g. the bridge removed by hand) does not keep the lease.
   */
  async disconnect(id: string, dir: string, o: ContainerNetworkOptions, network: string, force = false): Promise<void> {
    const att = this.networks.attachment(id, o.name, network);
    if (this.isUp(id)) {
      try {
        await netavarkTeardown(this.opts.tool(), this.opts.netns.pathOf(id), this.request(id, o, [att]));
      } catch (err) {
        if (!force) throw err;
      }
      await this.unguardIfGone(att);
    }
    this.networks.releaseOne(id, att.network.id);
    this.refreshResolvConf(id, dir, o);
  }

  private marker(id: string): string {
    return path.join(this.opts.runDir, `${id}.json`);
  }

  /** The ports `id`'s networking was set up with, from its marker; none without one. */
  private markedPorts(id: string): readonly PortMapping[] {
    try {
      return (JSON.parse(fs.readFileSync(this.marker(id), 'utf8')) as Partial<UpMarker>).ports ?? [];
    } catch {
      return [];
    }
  }

  /** Networking is up for `id` in this boot: the netns exists and setup completed (its marker is there). */
  isUp(id: string): boolean {
    return this.opts.netns.exists(id) && fs.existsSync(this.marker(id));
  }

  /**
   * Makes the netns and wires it to the container's networks (no-op when already up, e.g. a restart).
   * A half-done earlier attempt (netns without marker: a crash mid-setup) is torn down first. Host ports
   * are checked again: a host process may have taken one since create.
   */
  async up(id: string, o: ContainerNetworkOptions): Promise<void> {
    if (!isBridgeNetwork(o.network) || this.isUp(id)) return;
    assertHostPortsFree(o.ports ?? [], [], this.opts.host);
    const req = this.request(id, o);
    for (const a of req.attachments) this.networks.claimHost(a.network);
    for (const a of req.attachments) await guardNetworkDns(this.opts.tool(), a.network, this.opts.dnsGuardDir);
    await this.clear(id, req);
    // netavark brings lo up itself; a container on no network at all needs it done here.
    const netns = await this.opts.netns.create(id, req.attachments.length === 0);
    try {
      // Every network disconnected (docker allows it): the namespace with loopback only.
      const result = req.attachments.length > 0 ? await netavarkSetup(this.opts.tool(), netns, req) : {};
      fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 });
      // The ports go in too: netavark removes port rules only when told the ports, and a container whose
      // record is gone (see reconcile) has nothing else to tell them from.
      const marker: UpMarker = { ports: req.ports, result };
      writeFileAtomic(this.marker(id), JSON.stringify(marker), 0o600, { durable: false });
    } catch (err) {
      await this.opts.netns.remove(id).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The published ports berth-monitor forwards itself (port-proxy.ts: the IPv6 loopback), with the
   * container's address on its first network; none outside bridge networking. For each start's monitor,
   * which binds them: checked here first (also when networking stayed up since the last run, and
   * {@link up} checked nothing), so that a port taken meanwhile is refused naming its holder.
   */
  portProxies(id: string, o: ContainerNetworkOptions): PortProxy[] {
    if (!isBridgeNetwork(o.network)) return [];
    const proxies = portProxies(o.ports ?? [], this.networks.attachmentsOf(id));
    if (proxies.length > 0) assertHostPortsFree((o.ports ?? []).filter(needsProxy), [], this.opts.host);
    return proxies;
  }

  /** Tears the container's networking down (after a failed start); its leases stay for the next start. Safe when nothing is up. */
  async down(id: string, o: ContainerNetworkOptions): Promise<void> {
    if (isBridgeNetwork(o.network)) await this.clear(id, this.request(id, o));
  }

  /**
   * Tears down whatever networking `id` has: a netns, a marker of a finished setup, or both. A marker
   * without its netns (the namespace deleted under berth: a reboot-like loss, while the firewall rules,
   * DNS names and bridge remain) gets an empty stand-in netns, since netavark tears down only through
   * one. Best effort unless the setup was whole (netavark then must succeed). False when nothing was up.
   */
  private async clear(id: string, req: NetavarkRequest): Promise<boolean> {
    const marked = fs.existsSync(this.marker(id));
    const standIn = !this.opts.netns.exists(id);
    if (standIn && !marked) return false;
    if (standIn) await this.opts.netns.create(id, false);
    await this.teardown(id, req, standIn || !marked);
    return true;
  }

  /** {@link down}, then forgets the leases: the container is being removed. */
  async release(id: string, o: ContainerNetworkOptions): Promise<void> {
    await this.down(id, o);
    this.networks.release(id);
  }

  /**
   * Brings the kernel in line with the store (at agent start, and before `berth network prune`), after
   * a kill -9 mid-remove or a reboot: every container id of this store that holds a lease but is not in
   * `existing` (the store's containers), and still has networking (netns or "up" marker), is torn down
   * through netavark — its veth, firewall and port rules, DNS names, and the bridge with its last
   * container — and loses its leases. Existing containers are left to up/release (a stopped one keeps
   * its networking until its next start or its removal, as before), and so is any namespace a process
   * still runs in. Also claims every
   * network's subnet host-wide again (a reboot cleared the claims). Per-container failures are
   * reported, not thrown: one stuck container must not keep the agent from starting.
   */
  async reconcile(existing: ReadonlySet<string>): Promise<NetworkReconcileReport> {
    const report: NetworkReconcileReport = { tornDown: [], released: [], dnsStopped: [], problems: [] };
    for (const n of this.networks.list()) {
      try {
        this.networks.claimHost(n);
      } catch (err) {
        report.problems.push((err as Error).message);
      }
    }
    for (const { containerId: id, leasedAt } of this.networks.records.leaseHolders()) {
      if (existing.has(id) || this.opts.netns.inUse(id)) continue;
      try {
        // Its record is gone: the ports it was set up with are in its marker.
        const hasState = await this.clear(id, this.request(id, { name: id.slice(0, 12), network: DEFAULT_NETWORK, ports: this.markedPorts(id) }));
        if (hasState) report.tornDown.push(id);
        // Dropped when its networking was up (so the container existed), or when too old to be a create
        // in flight in another process.
        if (hasState || leasedAt < Date.now() - ORPHAN_AGE_MS) {
          this.networks.release(id);
          report.released.push(id);
        }
      } catch (err) {
        report.problems.push(`container ${id.slice(0, 12)}: ${(err as Error).message}`);
      }
    }
    await this.stopOrphanDns(report);
    return report;
  }

  /** The reconciliation's last step: orphaned aardvark-dns servers, which answer stale names on reused gateways. */
  private async stopOrphanDns(report: NetworkReconcileReport): Promise<void> {
    let tool: NetavarkTool;
    try {
      tool = this.opts.tool();
    } catch {
      return; // netavark is not installed: no aardvark-dns of berth's can run
    }
    try {
      report.dnsStopped.push(...(await stopOrphanAardvarks(this.opts.host, tool)));
    } catch (err) {
      report.problems.push(`orphaned aardvark-dns: ${(err as Error).message}`);
    }
  }

  /** After a teardown on `a`'s network: its DNS guard goes if netavark removed the bridge (its last container). */
  private async unguardIfGone(a: Attachment): Promise<void> {
    await unguardNetworkDns(this.opts.tool(), a.network, this.opts.dnsGuardDir, () => fs.existsSync(this.opts.host.resolve(`/sys/class/net/${a.network.bridge}`)));
  }

  /** netavark teardown, then the netns and the marker. `bestEffort`: setup may not have finished, so netavark may fail. */
  private async teardown(id: string, req: NetavarkRequest, bestEffort: boolean): Promise<void> {
    // A teardown killed partway (kill -9 of `berth rm`) leaves netavark's state half removed, and
    // netavark then fails on what is already gone (ENOENT): a second attempt is best effort too. What
    // it cannot remove, the reconciliation (agent start, network prune) does.
    const started = `${this.marker(id)}.teardown`;
    const retried = fs.existsSync(started);
    fs.mkdirSync(path.dirname(started), { recursive: true });
    fs.writeFileSync(started, '');
    try {
      if (req.attachments.length > 0) await netavarkTeardown(this.opts.tool(), this.opts.netns.pathOf(id), req);
    } catch (err) {
      if (!bestEffort && !retried) throw err;
    }
    for (const a of req.attachments) await this.unguardIfGone(a);
    await this.opts.netns.remove(id);
    for (const file of [this.marker(id), started]) {
      try {
        fs.unlinkSync(file);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
  }

  /**
   * netavark's request for `attachments` (default: all the container's). The ports go with every one, as
   * at a whole setup: netavark forwards them per network and removes only that network's rules. Not
   * the proxied ones: the monitor forwards those (port-proxy.ts).
   */
  private request(id: string, o: ContainerNetworkOptions, attachments: readonly Attachment[] = this.networks.attachmentsOf(id)): NetavarkRequest {
    return { containerId: id, containerName: o.name, attachments, ports: natPorts(o.ports ?? []) };
  }
}
