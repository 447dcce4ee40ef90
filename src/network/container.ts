import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { writeFileAtomic } from '../host/fsync.js';
import type { HostPaths } from '../host/paths.js';
import { readHostText } from '../host/read.js';
import { hostsFile, resolvConf } from './etc-files.js';
import { assertHostPortsFree, resolveEphemeralPorts, type PublishedBy } from './host-ports.js';
import { isBridgeNetwork } from './mode.js';
import { netavarkSetup, netavarkTeardown, type NetavarkRequest, type NetavarkTool } from './netavark.js';
import type { NetnsManager } from './netns.js';
import type { NetworkService } from './service.js';
import type { ExtraHost, PortMapping } from './types.js';

/** The networking parts of a container's options (a subset of RunOptions, so this module needs no runtime types). */
export interface ContainerNetworkOptions {
  readonly name: string;
  /** `host` | `none` | `private` | a network name (`bridge` = the default network). */
  readonly network: string;
  readonly hostname?: string;
  readonly ports?: readonly PortMapping[];
  readonly dns?: readonly string[];
  readonly networkAliases?: readonly string[];
  readonly extraHosts?: readonly ExtraHost[];
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
  readonly netns: NetnsManager;
  /** Found on first use, so hosts without netavark still run `--network none` containers. */
  readonly tool: () => NetavarkTool;
  /** tmpfs directory for "networking is up" markers (they must vanish with a reboot, as the netns does). */
  readonly runDir: string;
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
    const att = this.networks.lease(id, o.network, [o.name, ...(o.networkAliases ?? [])]);
    try {
      // docker: the default bridge has no DNS, so aliases would be names nobody can look up.
      if (!att.network.dnsEnabled && (o.networkAliases?.length ?? 0) > 0) throw new BerthError('invalid', `--network-alias needs a user network: ${att.network.name} has no DNS`, { hint: 'berth network create NAME, then --network NAME' });
      if (att.network.internal && ports.length > 0) throw new BerthError('invalid', `network ${att.network.name} is internal: it cannot publish ports (-p)`);
      const files = {
        'resolv.conf': resolvConf({
          ...(o.dns && { dns: o.dns }),
          networkDns: att.network.dnsEnabled ? [att.network.gateway] : [],
          searchDomains: att.network.dnsEnabled ? ['dns.podman'] : [],
          ...this.hostResolvConf(),
        }),
        hosts: hostsFile({ hostname: o.hostname ?? id.slice(0, 12), ip: att.lease.ip, extraHosts: o.extraHosts ?? [] }),
      };
      for (const [name, text] of Object.entries(files)) writeFileAtomic(path.join(dir, name), text, 0o644);
      return {
        namespacePath: this.opts.netns.pathOf(id),
        mounts: [{ destination: '/etc/resolv.conf', source: path.join(dir, 'resolv.conf') }, { destination: '/etc/hosts', source: path.join(dir, 'hosts') }],
        ports,
      };
    } catch (err) {
      this.networks.release(id);
      throw err;
    }
  }

  private hostResolvConf(): { hostResolvConf?: string } {
    const text = readHostText(this.opts.host, '/etc/resolv.conf');
    return text === undefined ? {} : { hostResolvConf: text };
  }

  private marker(id: string): string {
    return path.join(this.opts.runDir, `${id}.json`);
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
    if (this.opts.netns.exists(id)) await this.teardown(id, req, true);
    const netns = await this.opts.netns.create(id);
    try {
      const result = await netavarkSetup(this.opts.tool(), netns, req);
      fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 });
      writeFileAtomic(this.marker(id), JSON.stringify(result), 0o600, { durable: false });
    } catch (err) {
      await this.opts.netns.remove(id).catch(() => undefined);
      throw err;
    }
  }

  /** Tears the container's networking down (after a failed start); its leases stay for the next start. Safe when nothing is up. */
  async down(id: string, o: ContainerNetworkOptions): Promise<void> {
    if (!isBridgeNetwork(o.network) || !this.opts.netns.exists(id)) return;
    await this.teardown(id, this.request(id, o), !fs.existsSync(this.marker(id)));
  }

  /** {@link down}, then forgets the leases: the container is being removed. */
  async release(id: string, o: ContainerNetworkOptions): Promise<void> {
    await this.down(id, o);
    this.networks.release(id);
  }

  /** netavark teardown, then the netns and the marker. `bestEffort`: setup may not have finished, so netavark may fail. */
  private async teardown(id: string, req: NetavarkRequest, bestEffort: boolean): Promise<void> {
    try {
      if (req.attachments.length > 0) await netavarkTeardown(this.opts.tool(), this.opts.netns.pathOf(id), req);
    } catch (err) {
      if (!bestEffort) throw err;
    }
    await this.opts.netns.remove(id);
    try {
      fs.unlinkSync(this.marker(id));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }

  private request(id: string, o: ContainerNetworkOptions): NetavarkRequest {
    return { containerId: id, containerName: o.name, attachments: this.networks.attachmentsOf(id), ports: o.ports ?? [] };
  }
}
