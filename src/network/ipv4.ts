import { BerthError } from '../errors.js';

/**
 * IPv4 addresses and CIDR prefixes as unsigned 32-bit numbers: the one place berth parses and formats
 * them, so IPAM, the CLI and the netavark translation agree on what "10.89.0.0/24" means.
 */

export interface Cidr {
  /** The network address (host bits cleared), as an unsigned 32-bit number. */
  readonly base: number;
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** `10.89.0.1` → number; `what` names the flag or key in the error. */
export function parseIPv4(text: string, what: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) throw new BerthError('invalid', `${what}: "${text}" is not an IPv4 address`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIPv4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** Number of addresses in a prefix (2^(32-prefix)). */
export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** `10.89.0.0/24` → Cidr. Host bits must be zero (docker refuses `10.89.0.5/24` as a subnet too). */
export function parseCidr(text: string, what: string): Cidr {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m || Number(m[2]) > 32) throw new BerthError('invalid', `${what}: "${text}" is not an IPv4 CIDR (e.g. 10.89.0.0/24)`);
  const addr = parseIPv4(m[1]!, what);
  const prefix = Number(m[2]);
  const c = { base: addr, prefix };
  if (addr % cidrSize(c) !== 0) {
    const base = addr - (addr % cidrSize(c));
    throw new BerthError('invalid', `${what}: "${text}" has host bits set (did you mean ${formatIPv4(base)}/${prefix}?)`);
  }
  return c;
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, addr: number): boolean {
  return addr >= c.base && addr < c.base + cidrSize(c);
}

/** Two prefixes overlap iff one contains the other's base. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.base) || cidrContains(b, a.base);
}

/** `b` lies entirely within `a`. */
export function cidrWithin(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.base);
}
