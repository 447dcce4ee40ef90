/**
 * The network model berth persists and shows: docker's user-defined bridge networks, IPv4 only for
 * now. Everything here is plain data; src/network/service.ts owns the behaviour.
 */

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

/** One published port range: host `hostPort…hostPort+count-1` → container `containerPort…`. */
export interface PortMapping {
  /** '' = every host address (0.0.0.0). */
  readonly hostIp: string;
  /** 0 = an ephemeral port chosen at create time. */
  readonly hostPort: number;
  readonly containerPort: number;
  /** Number of consecutive ports, ≥ 1. */
  readonly count: number;
  readonly protocol: 'tcp' | 'udp';
}

/** `--add-host NAME:IP`. */
export interface ExtraHost {
  readonly name: string;
  readonly ip: string;
}

/** A container's address on one network (a lease), as persisted. */
export interface Lease {
  readonly networkId: string;
  readonly containerId: string;
  /** Dotted IPv4. */
  readonly ip: string;
  /** Names the container answers to in the network's DNS (its name first, then aliases). */
  readonly names: readonly string[];
}
