import net from 'node:net';
import { BerthError } from '../errors.js';
import { parseIPv6 } from './ipv6.js';
import type { Attachment } from './netavark.js';
import { formatPortMapping } from './ports.js';
import type { PortMapping } from './types.js';

/**
 * Which published ports go through berth-monitor's user-space proxy (native/proxy.c) instead of
 * netavark's DNAT, and the monitor arguments that say so. The one place this is decided.
 *
 * The kernel cannot DNAT a connection from the host's IPv6 loopback to a bridge: IPv6 has no
 * route_localnet, so a packet from ::1 is never routed off the host (netavark sets route_localnet for
 * 127.0.0.1 only). docker solves it with docker-proxy; berth's monitor owns the listening sockets,
 * since it lives exactly as long as the container and outlives the CLI and the agent.
 */

/** native/proxy.h PROXY_LISTENERS_MAX: listening sockets per container, one per port of a range. */
export const PROXY_LISTENERS_MAX = 64;

/** One forwarded mapping, as the monitor is given it. */
export interface PortProxy {
  readonly protocol: 'tcp' | 'udp';
  /** Where the monitor listens (canonical text). */
  readonly hostIp: string;
  readonly hostPort: number;
  /** The container's address on its first network: IPv6 when the network has it, else IPv4. */
  readonly targetIp: string;
  readonly targetPort: number;
  readonly count: number;
}

/** True for the host's IPv6 loopback in any spelling (`::1`, `0:0:0:0:0:0:0:1`). */
function isIPv6Loopback(ip: string): boolean {
  return net.isIPv6(ip) && !ip.includes('.') && parseIPv6(ip, 'host IP') === 1n;
}

/** The mapping is forwarded by the monitor's proxy, not by netavark. */
export function needsProxy(p: PortMapping): boolean {
  return isIPv6Loopback(p.hostIp);
}

/** The mappings netavark is asked to forward (DNAT): all but the proxied ones. */
export function natPorts(ports: readonly PortMapping[]): PortMapping[] {
  return ports.filter((p) => !needsProxy(p));
}

/**
 * Refuses (`invalid`, at create) proxied mappings that need more listening sockets than the monitor
 * holds, naming the mapping that goes past the cap.
 */
export function assertProxyLimits(ports: readonly PortMapping[]): void {
  let total = 0;
  for (const p of ports.filter(needsProxy)) {
    total += p.count;
    if (total > PROXY_LISTENERS_MAX) {
      throw new BerthError('invalid', `-p ${formatPortMapping(p)}: at most ${PROXY_LISTENERS_MAX} ports can be published on the IPv6 loopback (::1) per container`, { hint: 'publish a smaller range on [::1], or publish it on 127.0.0.1 or all addresses' });
    }
  }
}

/**
 * The proxies for `ports` of a container with `attachments`: each proxied mapping forwarded to the
 * container's address on its first interface (eth0; the one docker publishes through), its IPv6
 * address when the network is dual-stack. None when the container is on no network (every one
 * disconnected): there is nothing to forward to, as with DNAT.
 */
export function portProxies(ports: readonly PortMapping[], attachments: readonly Attachment[]): PortProxy[] {
  const ifIndex = (a: Attachment): number => Number(/(\d+)$/.exec(a.interfaceName)?.[1] ?? Infinity);
  const first = [...attachments].sort((a, b) => ifIndex(a) - ifIndex(b))[0];
  if (!first) return [];
  const targetIp = first.lease.ip6 ?? first.lease.ip;
  return ports.filter(needsProxy).map((p) => ({ protocol: p.protocol, hostIp: '::1', hostPort: p.hostPort, targetIp, targetPort: p.containerPort, count: p.count }));
}

/** berth-monitor's `--proxy PROTO,LISTEN-IP,LISTEN-PORT,TARGET-IP,TARGET-PORT,COUNT` arguments (native/README.md). */
export function proxyMonitorArgs(proxies: readonly PortProxy[]): string[] {
  return proxies.flatMap((p) => ['--proxy', [p.protocol, p.hostIp, p.hostPort, p.targetIp, p.targetPort, p.count].join(',')]);
}
