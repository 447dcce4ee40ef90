import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BerthError } from '../errors.js';
import type { Attachment } from './netavark.js';
import { formatPortMapping } from './ports.js';
import type { PortMapping } from './types.js';

const execFileAsync = promisify(execFile);

/**
 * Published ports on one address family's wildcard, as docker has them: no host address publishes on
 * every IPv4 and IPv6 address, `0.0.0.0` on every IPv4 address only, `[::]` on every IPv6 address only.
 *
 * netavark 1.4 cannot say "every address of one family": a host_ip it is given becomes `-d HOST_IP` in
 * its DNAT rules, so `0.0.0.0` and `::` match only packets sent to those literal addresses (measured:
 * `-d 0.0.0.0/32`, `-d ::/128`; nothing is published), and an empty host_ip makes rules in both
 * families. So a wildcard goes to netavark as empty, and after its setup berth deletes the other
 * family's rules of that mapping from the network's port chain. netavark's teardown skips rules that
 * are already gone (measured with 1.4, last container and not), so teardown needs nothing more.
 */

/** The family a wildcard host address is restricted to; undefined for '' (both) and specific addresses (netavark filters those). */
export function wildcardFamily(hostIp: string): 4 | 6 | undefined {
  return hostIp === '0.0.0.0' ? 4 : hostIp === '::' ? 6 : undefined;
}

/** The host_ip netavark is given: a wildcard is every address (see the module comment). */
export function netavarkHostIp(hostIp: string): string {
  return wildcardFamily(hostIp) === undefined ? hostIp : '';
}

/**
 * Refuses ports the container's networks cannot carry: any on an internal network (docker's refusal),
 * and `[::]:P` when it has no IPv6 address (docker would proxy it to IPv4; netavark has no proxy).
 */
export function assertPublishable(ports: readonly PortMapping[], atts: readonly Attachment[], container: string): void {
  if (ports.length === 0) return;
  const internal = atts.find((a) => a.network.internal);
  if (internal) throw new BerthError('invalid', `network ${internal.network.name} is internal: it cannot publish ports (-p)`);
  const v6Only = ports.find((p) => wildcardFamily(p.hostIp) === 6);
  if (v6Only && !atts.some((a) => a.lease.ip6 !== undefined)) {
    throw new BerthError('invalid', `-p ${formatPortMapping(v6Only)} publishes on IPv6 only, and ${container} has no IPv6 address (${atts.map((a) => a.network.name).join(', ')}: IPv4 only)`, {
      hint: 'publish without a host address (IPv4 and IPv6), or join a network made with --ipv6',
    });
  }
}

/** The firewall commands, one per family. */
export interface FamilyTables {
  readonly iptables: string;
  readonly ip6tables: string;
}

/** One mapping's rules to remove: in the family `family`, those forwarding to `containerIp` on this network. */
export interface UnwantedRules {
  readonly family: 4 | 6;
  readonly networkId: string;
  readonly containerId: string;
  readonly containerIp: string;
  readonly port: PortMapping;
}

/**
 * The rules to drop after netavark's setup of `containerId` on a network where it has `ip` (and `ip6`):
 * for each wildcard mapping, the other family's, when the container has an address of that family
 * (netavark made no rules for a family the container lacks).
 */
export function unwantedRules(containerId: string, networkId: string, ip: string, ip6: string | undefined, ports: readonly PortMapping[]): UnwantedRules[] {
  return ports.flatMap((port): UnwantedRules[] => {
    const keep = wildcardFamily(port.hostIp);
    if (keep === 6) return [{ family: 4, networkId, containerId, containerIp: ip, port }];
    if (keep === 4 && ip6 !== undefined) return [{ family: 6, networkId, containerId, containerIp: ip6, port }];
    return [];
  });
}

/** `--dport` as iptables prints it: `8080`, or `8080:8082` for a range. */
function dportText(p: PortMapping): string {
  return p.count > 1 ? `${p.hostPort}:${p.hostPort + p.count - 1}` : String(p.hostPort);
}

/** An `iptables -S` line for `p`'s protocol and exact host port (range). */
function forPort(line: string, p: PortMapping): boolean {
  const words = line.split(/\s+/);
  return words.some((w, i) => w === dportText(p) && words[i - 1] === '--dport') && words.some((w, i) => w === p.protocol && words[i - 1] === '-p');
}

/**
 * The port chain (NETAVARK-DN-…) of `u`'s network, from the jump in NETAVARK-HOSTPORT-DNAT (listed by
 * `iptables -S`) that netavark comments with the network and container. `what` names the mapping in
 * the error when there is none (netavark used another firewall driver).
 */
export function portChainOf(u: UnwantedRules, hostportDnat: string, what: string): string {
  const jump = hostportDnat.split('\n').find((l) => l.startsWith('-A NETAVARK-HOSTPORT-DNAT ') && forPort(l, u.port) && l.includes(`dnat name: ${u.networkId} id: ${u.containerId}`));
  const chain = jump === undefined ? undefined : /-j (NETAVARK-DN-[0-9A-F]+)/.exec(jump)?.[1];
  if (chain !== undefined) return chain;
  throw new BerthError('host', `${what}: netavark's port rule for it was not found, so it cannot be kept to IPv${u.family === 4 ? 6 : 4}`, {
    hint: "berth needs netavark's iptables firewall driver (with firewalld running netavark uses that instead); or publish without a host address (both families)",
  });
}

/**
 * The lines of `chain`'s listing to delete for `u`: the mark rules for its host port without a
 * destination, and the DNAT rule to the container's address. Pure, so the matching is tested without
 * a firewall.
 */
export function rulesToDelete(u: UnwantedRules, chain: string, listing: string): string[] {
  const target = u.family === 6 ? `[${u.containerIp}]:` : `${u.containerIp}:`;
  return listing.split('\n').filter((l) => l.startsWith(`-A ${chain} `) && forPort(l, u.port) && !/ -d /.test(l)
    && (/ -j NETAVARK-HOSTPORT-SETMARK( |$)/.test(l) || (/ -j DNAT( |$)/.test(l) && l.includes(`--to-destination ${target}`))));
}

/** Deletes the rules {@link unwantedRules} lists; `what(port)` names the mapping in errors. */
export async function dropUnwantedRules(tables: FamilyTables, all: readonly UnwantedRules[], what: (p: PortMapping) => string): Promise<void> {
  for (const u of all) {
    const cmd = u.family === 4 ? tables.iptables : tables.ip6tables;
    const run = async (args: string[]): Promise<string> => (await execFileAsync(cmd, ['-w', '-t', 'nat', ...args], { timeout: 10_000 })).stdout;
    const chain = portChainOf(u, await run(['-S', 'NETAVARK-HOSTPORT-DNAT']), what(u.port));
    // The chain's rules carry no quoted words (only the jump has a comment), so a split gives the arguments back.
    for (const line of rulesToDelete(u, chain, await run(['-S', chain]))) await run(['-D', ...line.split(/\s+/).slice(1)]);
  }
}
