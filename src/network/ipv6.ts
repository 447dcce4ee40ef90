import crypto from 'node:crypto';
import net from 'node:net';
import { BerthError } from '../errors.js';

/**
 * IPv6 addresses, prefixes and address management for dual-stack networks (docker's and podman's
 * `--ipv6`): the one place berth parses and formats them, as ipv4.ts is for IPv4. Addresses are
 * 128-bit BigInts; text out is the canonical compressed form (RFC 5952), so leases compare as strings.
 */

export interface Cidr6 {
  readonly base: bigint;
  readonly prefix: number;
}

/** What a dual-stack network keeps of its IPv6 half. */
export interface Ipv6Plan {
  readonly subnet: string;
  readonly gateway: string;
}

/** A v6 prefix in use, with who uses it, for the overlap error. */
export interface TakenSubnet6 {
  readonly cidr: Cidr6;
  readonly owner: string;
  readonly device?: string;
}

const ALL = (1n << 128n) - 1n;

/** `fd00::1` → bigint; `what` names the flag or key in the error. */
export function parseIPv6(text: string, what: string): bigint {
  if (net.isIPv6(text) === false || text.includes('%')) throw new BerthError('invalid', `${what}: "${text}" is not an IPv6 address`);
  // An embedded IPv4 tail (::ffff:1.2.3.4) names a v4 host, never a bridge network's address.
  if (text.includes('.')) throw new BerthError('invalid', `${what}: "${text}" is an IPv4-mapped form; give the IPv6 address in hex groups`);
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** The RFC 5952 text: lower case, the longest run (≥ 2) of zero groups as `::`. */
export function formatIPv6(n: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export function parseCidr6(text: string, what: string): Cidr6 {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const prefix = m ? Number(m[2]) : NaN;
  if (!m || prefix > 128) throw new BerthError('invalid', `${what}: "${text}" is not an IPv6 subnet (address/prefix)`);
  const addr = parseIPv6(m[1]!, what);
  const mask = prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
  return { base: addr & mask, prefix };
}

export function formatCidr6(c: Cidr6): string {
  return `${formatIPv6(c.base)}/${c.prefix}`;
}

function size(c: Cidr6): bigint {
  return 1n << BigInt(128 - c.prefix);
}

export function cidr6Contains(c: Cidr6, a: bigint): boolean {
  return a >= c.base && a < c.base + size(c);
}

export function cidrs6Overlap(a: Cidr6, b: Cidr6): boolean {
  return cidr6Contains(a, b.base) || cidr6Contains(b, a.base);
}

/** True for text that is an IPv6 address or prefix (the CLI's and compose's family split). */
export function isIPv6Text(text: string): boolean {
  return net.isIPv6(text.split('/')[0]!);
}

/**
 * The IPv6 half of a new dual-stack network. An explicit subnet must not overlap a taken one and must
 * leave room (/126 or larger); without one, a random /64 of the unique local range fd00::/8 (RFC
 * 4193), as podman picks. The gateway defaults to the subnet's first address.
 */
export function planSubnet6(req: { subnet?: string; gateway?: string }, taken: readonly TakenSubnet6[], what = '--subnet'): Ipv6Plan {
  let subnet: Cidr6;
  if (req.subnet !== undefined) {
    subnet = parseCidr6(req.subnet, what);
    if (subnet.prefix > 126) throw new BerthError('invalid', `${what} ${req.subnet}: a /${subnet.prefix} leaves no room for a gateway and containers (use /126 or larger)`);
    const clash = taken.find((t) => cidrs6Overlap(t.cidr, subnet));
    if (clash) throw new BerthError('conflict', `${what} ${req.subnet} overlaps ${formatCidr6(clash.cidr)} of ${clash.owner}`, { hint: 'choose an IPv6 subnet no other network or host interface uses' });
  } else {
    if (req.gateway !== undefined) throw new BerthError('usage', `the IPv6 gateway ${req.gateway} needs an IPv6 subnet`);
    for (;;) {
      const id = BigInt(`0x${crypto.randomBytes(5).toString('hex')}`);
      subnet = { base: (0xfdn << 120n) | (id << 80n), prefix: 64 };
      const s = subnet;
      if (!taken.some((t) => cidrs6Overlap(t.cidr, s))) break;
    }
  }
  const gateway = req.gateway === undefined ? subnet.base + 1n : parseIPv6(req.gateway, `${what} gateway`);
  if (!cidr6Contains(subnet, gateway) || gateway === subnet.base) throw new BerthError('invalid', `the IPv6 gateway ${req.gateway} is not a host address of ${formatCidr6(subnet)}`);
  return { subnet: formatCidr6(subnet), gateway: formatIPv6(gateway) };
}

/**
 * A container's IPv6 address on `net`: `ip` when given (compose ipv6_address, `--ip6`: checked to be in
 * the subnet, not the gateway or the subnet address, free), else the lowest free one after the gateway.
 */
export function leaseAddress6(net: { name: string; ipv6Subnet: string; ipv6Gateway: string }, used: ReadonlySet<string>, ip?: string, what = '--ip6'): string {
  const subnet = parseCidr6(net.ipv6Subnet, `network ${net.name} IPv6 subnet`);
  const gateway = parseIPv6(net.ipv6Gateway, `network ${net.name} IPv6 gateway`);
  if (ip !== undefined) {
    const a = parseIPv6(ip, what);
    const text = formatIPv6(a);
    if (!cidr6Contains(subnet, a) || a === subnet.base) throw new BerthError('invalid', `${what} ${ip} is not an address of network ${net.name}'s IPv6 subnet ${net.ipv6Subnet}`);
    if (a === gateway) throw new BerthError('invalid', `${what} ${ip} is the IPv6 gateway of network ${net.name}`);
    if (used.has(text)) throw new BerthError('conflict', `${what} ${ip} is already in use on network ${net.name}`, { hint: `berth network inspect ${net.name} shows who has it` });
    return text;
  }
  // Leases are few (a board runs tens of containers): a linear walk from the gateway ends fast.
  for (let a = subnet.base + 1n; a < subnet.base + size(subnet); a++) {
    if (a === gateway) continue;
    const text = formatIPv6(a);
    if (!used.has(text)) return text;
  }
  throw new BerthError('resource', `network ${net.name} has no free IPv6 address left in ${net.ipv6Subnet}`);
}

/** The host's own IPv6 routes from /proc/net/ipv6_route, minus the default, link-local, loopback and multicast ones. */
export function parseProcIpv6Route(text: string): TakenSubnet6[] {
  const out: TakenSubnet6[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const prefix = parseInt(f[1]!, 16);
    const device = f[9]!;
    const base = BigInt(`0x${f[0]}`);
    if (prefix === 0 || device === 'lo' || (base >> 118n) === 0x3fan || (base >> 120n) === 0xffn) continue;
    out.push({ cidr: { base, prefix }, owner: `the host's route on ${device}`, device });
  }
  return out;
}
