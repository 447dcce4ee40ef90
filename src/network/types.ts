/**
 * The network model berth persists and shows: docker's user-defined bridge networks, IPv4 only for
 * now. Everything here is plain data; src/network/service.ts owns the behaviour.
 */

// The persisted parts (a network, a lease) are defined with their table in src/store/networks.ts, which
// imports nothing above the store; they are this model's all the same.
export type { Lease, NetworkDefinition, NetworkDriver } from '../store/networks.js';

/** One published port range: host `hostPort…hostPort+count-1` → container `containerPort…`. */
export interface PortMapping {
  /** '' = every host address (0.0.0.0). */
  readonly hostIp: string;
  /** 0 = an ephemeral port chosen at create time. */
  readonly hostPort: number;
  readonly containerPort: number;
  /** Number of consecutive ports, ≥ 1. */
  readonly count: number;
  /**
   * docker's `-p 8000-8010:80`: a host range for one container port means "any free port of
   * hostPort…hostPortEnd". Only before create: the engine stores the port it picked, without this.
   */
  readonly hostPortEnd?: number;
  readonly protocol: 'tcp' | 'udp';
}

/** `--add-host NAME:IP`. */
export interface ExtraHost {
  readonly name: string;
  readonly ip: string;
}
