import { BerthError } from '../errors.js';
import { cidrContains, cidrSize, cidrsOverlap, cidrWithin, formatCidr, formatIPv4, parseCidr, parseIPv4, type Cidr } from './ipv4.js';

/**
 * IPv4 address management, pure: which subnet a new network gets and which address a container gets.
 * The caller supplies what is taken (other networks, the host's own routes) and persists the result
 * in the same transaction it read them in, so two concurrent creates cannot both win.
 */

/** A prefix already in use, with who uses it, for the overlap error. */
export interface TakenSubnet {
  readonly cidr: Cidr;
  /** e.g. `network "app_default"` or `the host's route on eth0`. */
  readonly owner: string;
  /** The interface of a host route. */
  readonly device?: string;
}

export interface SubnetRequest {
  readonly subnet?: string;
  readonly gateway?: string;
  readonly ipRange?: string;
}

export interface SubnetPlan {
  readonly subnet: string;
  readonly gateway: string;
  readonly ipRange?: string;
}

/** Where networks get their subnet when none is asked for: podman's pools (10.88/16 for the default, /24s of 10.89/16 for the others). */
export const DEFAULT_BRIDGE_SUBNET = '10.88.0.0/16';
export const USER_POOL = { pool: '10.89.0.0/16', prefix: 24 } as const;

/**
 * The subnet, gateway and range for a new network. An explicit `--subnet` must not overlap anything
 * taken; without one, the first free prefix of `pool` (or `preferred`, when given and free) is used.
 * The gateway defaults to the subnet's first address; `--gateway`/`--ip-range` need `--subnet`
 * (as docker) and must lie inside it.
 */
export function planSubnet(req: SubnetRequest, taken: readonly TakenSubnet[], pool: { pool: string; prefix: number } = USER_POOL, preferred?: string): SubnetPlan {
  let subnet: Cidr;
  if (req.subnet !== undefined) {
    subnet = parseCidr(req.subnet, '--subnet');
    if (subnet.prefix > 30) throw new BerthError('invalid', `--subnet ${req.subnet}: a /${subnet.prefix} leaves no room for a gateway and containers (use /30 or larger)`);
    const clash = taken.find((t) => cidrsOverlap(t.cidr, subnet));
    if (clash) throw new BerthError('conflict', `--subnet ${req.subnet} overlaps ${formatCidr(clash.cidr)} of ${clash.owner}`, { hint: 'choose a subnet no other network or host interface uses' });
  } else {
    if (req.gateway !== undefined || req.ipRange !== undefined) throw new BerthError('usage', `${req.gateway !== undefined ? '--gateway' : '--ip-range'} needs --subnet`);
    subnet = freeSubnet(taken, pool, preferred);
  }
  const gateway = req.gateway === undefined ? subnet.base + 1 : parseIPv4(req.gateway, '--gateway');
  if (!usable(subnet, gateway)) throw new BerthError('invalid', `--gateway ${formatIPv4(gateway)} is not a host address of ${formatCidr(subnet)}`);
  let ipRange: Cidr | undefined;
  if (req.ipRange !== undefined) {
    ipRange = parseCidr(req.ipRange, '--ip-range');
    if (!cidrWithin(subnet, ipRange)) throw new BerthError('invalid', `--ip-range ${req.ipRange} is not inside --subnet ${formatCidr(subnet)}`);
  }
  return { subnet: formatCidr(subnet), gateway: formatIPv4(gateway), ...(ipRange && { ipRange: formatCidr(ipRange) }) };
}

function freeSubnet(taken: readonly TakenSubnet[], pool: { pool: string; prefix: number }, preferred?: string): Cidr {
  const free = (c: Cidr): boolean => !taken.some((t) => cidrsOverlap(t.cidr, c));
  if (preferred !== undefined) {
    const p = parseCidr(preferred, 'default subnet');
    if (free(p)) return p;
  }
  const outer = parseCidr(pool.pool, 'address pool');
  const step = 2 ** (32 - pool.prefix);
  for (let base = outer.base; base < outer.base + cidrSize(outer); base += step) {
    const c = { base, prefix: pool.prefix };
    if (free(c)) return c;
  }
  throw new BerthError('resource', `no free /${pool.prefix} subnet left in the address pool ${pool.pool}`, { hint: 'remove unused networks (berth network prune) or give --subnet' });
}

/** Neither the network address nor the broadcast address (both exist only below /31). */
function usable(subnet: Cidr, addr: number): boolean {
  if (!cidrContains(subnet, addr)) return false;
  return subnet.prefix >= 31 || (addr !== subnet.base && addr !== subnet.base + cidrSize(subnet) - 1);
}

/**
 * The lowest free address for a container: inside the range (or subnet), a host address of the
 * subnet, not the gateway, not in `used`. Exhaustion is a `resource` error naming the network.
 */
export function allocateAddress(net: { name: string; subnet: string; gateway: string; ipRange?: string }, used: ReadonlySet<string>): string {
  const subnet = parseCidr(net.subnet, `network ${net.name} subnet`);
  const range = net.ipRange === undefined ? subnet : parseCidr(net.ipRange, `network ${net.name} ip-range`);
  const gateway = parseIPv4(net.gateway, `network ${net.name} gateway`);
  for (let a = range.base; a < range.base + cidrSize(range); a++) {
    if (a === gateway || !usable(subnet, a)) continue;
    const ip = formatIPv4(a);
    if (!used.has(ip)) return ip;
  }
  throw new BerthError('resource', `network ${net.name} has no free address left in ${formatCidr(range)} (${used.size} in use)`, {
    hint: 'remove containers from it, or create a network with a larger --subnet/--ip-range',
  });
}

/**
 * The host's own IPv4 routes from /proc/net/route (destination and mask are little-endian hex), minus
 * the default route: a network must not shadow a LAN the host is on.
 */
export function parseProcNetRoute(text: string): TakenSubnet[] {
  const out: TakenSubnet[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = leHex(f[1]!);
    const mask = leHex(f[7]!);
    if (mask === 0) continue;
    const prefix = 32 - Math.log2(2 ** 32 - mask);
    if (!Number.isInteger(prefix)) continue;
    out.push({ cidr: { base: dest, prefix }, owner: `the host's route on ${f[0]}`, device: f[0]! });
  }
  return out;
}

function leHex(h: string): number {
  const n = parseInt(h, 16);
  return (((n & 0xff) << 24) >>> 0) + ((n >>> 8) & 0xff) * 65536 + ((n >>> 16) & 0xff) * 256 + ((n >>> 24) & 0xff);
}
