import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import { readHostText } from '../host/read.js';
import { formatIPv6, parseIPv6 } from './ipv6.js';
import { formatPortMapping, portsClash } from './ports.js';
import type { PortMapping } from './types.js';

/**
 * Host ports as the kernel and berth see them. netavark forwards published ports with DNAT rules and
 * binds nothing (berth-monitor binds only the [::1] ones it proxies, once the container starts:
 * port-proxy.ts), so berth checks, before anything is made, that no host process holds the port (from
 * /proc/net/{tcp,udp}{,6}, which also lets it name the process) and that no other berth container
 * publishes it (from the caller's records: the kernel knows nothing of DNAT "owners").
 */

/** A host socket on a port: TCP in LISTEN, or any bound UDP socket, with its local address. */
interface HostSocket {
  readonly ip: string;
  readonly port: number;
  readonly inode: string;
}

/** Sockets of `protocol` from /proc/net/<protocol>{,6}; IPv6 any (::) is reported as '' like 0.0.0.0. */
export function hostSockets(host: HostPaths, protocol: 'tcp' | 'udp'): HostSocket[] {
  const out: HostSocket[] = [];
  for (const file of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
    for (const line of (readHostText(host, file) ?? '').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const [addrHex = '', portHex = ''] = f[1]!.split(':');
      if (protocol === 'tcp' && f[3] !== '0A') continue; // LISTEN only
      out.push({ ip: procAddress(addrHex), port: parseInt(portHex, 16), inode: f[9]! });
    }
  }
  return out;
}

/**
 * /proc/net's hex address → dotted IPv4 or canonical IPv6 (RFC 5952), '' for any address. IPv6 is
 * four 32-bit words, each in the host's byte order (little-endian on every board berth runs on).
 */
function procAddress(hex: string): string {
  if (/^0+$/.test(hex)) return '';
  if (hex.length === 8) return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
  const words = hex.match(/.{8}/g) ?? [];
  return formatIPv6(words.reduce((n, w) => (n << 32n) | BigInt(`0x${w.match(/../g)!.reverse().join('')}`), 0n));
}

/** A mapping's host address as procAddress spells it, so that `::1` and `0:0::1` compare equal. */
function canonicalHostIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  try {
    const n = parseIPv6(ip, 'host IP');
    return n === 0n ? '' : formatIPv6(n);
  } catch {
    return ip;
  }
}

/** Another container's published ports, for the clash check. */
export interface PublishedBy {
  readonly container: string;
  readonly ports: readonly PortMapping[];
}

/**
 * Refuses (`conflict`) when a host port of `ports` is held by a host process (named when /proc tells:
 * `pid 123 (mosquitto)`) or published by another berth container (named). Ephemeral mappings are skipped.
 */
export function assertHostPortsFree(ports: readonly PortMapping[], others: readonly PublishedBy[], host: HostPaths): void {
  for (const p of ports) {
    if (p.hostPort === 0) continue;
    for (const o of others) {
      const clash = o.ports.find((q) => portsClash(p, q));
      if (clash) throw new BerthError('conflict', `host port ${formatPortMapping(p)} is already published by container ${o.container} (${formatPortMapping(clash)})`, { hint: 'publish another host port, or remove that container' });
    }
    const ip = canonicalHostIp(p.hostIp);
    const held = hostSockets(host, p.protocol).find((s) => s.port >= p.hostPort && s.port < p.hostPort + p.count && (s.ip === '' || ip === '' || s.ip === ip));
    if (held) {
      const user = socketOwner(host, held.inode);
      throw new BerthError('conflict', `host port ${held.port}/${p.protocol} (-p ${formatPortMapping(p)}) is already in use${user ? ` by ${user}` : ''}`, { hint: 'stop what uses it, or publish another host port' });
    }
  }
}

/**
 * Picks the host ports create leaves to berth: each ephemeral mapping (hostPort 0) becomes single-port
 * mappings on free ports of the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), as
 * docker does for `-p 80`; a host range for one container port (`-p 8000-8010:80`) becomes its first
 * free port. Free means held by no host socket, by no mapping of `others` and by no other mapping of
 * `ports`. A range with no free port is a `conflict` naming it.
 */
export function resolveEphemeralPorts(ports: readonly PortMapping[], others: readonly PublishedBy[], host: HostPaths): PortMapping[] {
  const [lo = 32768, hi = 60999] = (readHostText(host, '/proc/sys/net/ipv4/ip_local_port_range') ?? '').trim().split(/\s+/).map(Number);
  const taken = new Set<string>();
  const sockets = { tcp: hostSockets(host, 'tcp'), udp: hostSockets(host, 'udp') };
  for (const proto of ['tcp', 'udp'] as const) for (const s of sockets[proto]) taken.add(`${proto}/${s.port}`);
  for (const q of [...others.flatMap((o) => o.ports), ...ports]) for (let i = 0; i < q.count; i++) if (q.hostPort !== 0 && q.hostPortEnd === undefined) taken.add(`${q.protocol}/${q.hostPort + i}`);
  /** The first free port of lo…hi from `start` on (wrapping), taken for good; 0 when none is. */
  const pick = (protocol: string, first: number, last: number, start: number): number => {
    const span = last - first + 1;
    for (let k = 0; k < span; k++) {
      const candidate = first + ((start + k) % span);
      if (!taken.has(`${protocol}/${candidate}`)) {
        taken.add(`${protocol}/${candidate}`);
        return candidate;
      }
    }
    return 0;
  };
  const out: PortMapping[] = [];
  for (const p of ports) {
    if (p.hostPortEnd !== undefined) {
      const { hostPortEnd: end, ...rest } = p;
      const port = pick(p.protocol, p.hostPort, end, 0);
      if (port === 0) throw new BerthError('conflict', `-p ${formatPortMapping(p)}: every host port of ${p.hostPort}-${end}/${p.protocol} is in use`, { hint: 'widen the range, or free one of its ports' });
      out.push({ ...rest, hostPort: port });
    } else if (p.hostPort !== 0) {
      out.push(p);
    } else {
      for (let i = 0; i < p.count; i++) {
        // Random start, as the kernel: two creates in a row rarely race for the same port.
        const port = pick(p.protocol, lo, hi, Math.floor(Math.random() * (hi - lo + 1)));
        if (port === 0) throw new BerthError('resource', `no free host port left in ${lo}-${hi} for ${p.containerPort + i}/${p.protocol}`);
        out.push({ ...p, hostPort: port, containerPort: p.containerPort + i, count: 1 });
      }
    }
  }
  return out;
}

/** The process holding the socket with `inode`, from /proc/PID/fd; undefined when it cannot tell. */
function socketOwner(host: HostPaths, inode: string): string | undefined {
  const proc = host.resolve('/proc');
  const target = `socket:[${inode}]`;
  for (const pid of safeReaddir(proc).filter((d) => /^\d+$/.test(d))) {
    const fdDir = path.join(proc, pid, 'fd');
    for (const fd of safeReaddir(fdDir)) {
      let link: string;
      try {
        link = fs.readlinkSync(path.join(fdDir, fd));
      } catch {
        continue;
      }
      if (link === target) {
        const comm = readHostText(host, `/proc/${pid}/comm`)?.trim();
        return `pid ${pid}${comm ? ` (${comm})` : ''}`;
      }
    }
  }
  return undefined;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'EACCES') || isErrno(err, 'ENOTDIR') || isErrno(err, 'ESRCH')) return [];
    throw err;
  }
}
