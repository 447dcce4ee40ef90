import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import { readHostText } from '../host/read.js';
import { formatPortMapping, portsClash } from './ports.js';
import type { PortMapping } from './types.js';

/**
 * Host ports as the kernel and berth see them. netavark forwards published ports with DNAT rules and
 * binds nothing, so berth checks, before anything is made, that no host process holds the port (from
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

/** /proc/net's little-endian hex address → dotted IPv4, '' for any address, the hex itself for other IPv6. */
function procAddress(hex: string): string {
  if (/^0+$/.test(hex)) return '';
  if (hex.length === 8) return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
  return hex;
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
    const held = hostSockets(host, p.protocol).find((s) => s.port >= p.hostPort && s.port < p.hostPort + p.count && (s.ip === '' || p.hostIp === '' || s.ip === p.hostIp));
    if (held) {
      const user = socketOwner(host, held.inode);
      throw new BerthError('conflict', `host port ${held.port}/${p.protocol} (-p ${formatPortMapping(p)}) is already in use${user ? ` by ${user}` : ''}`, { hint: 'stop what uses it, or publish another host port' });
    }
  }
}

/**
 * Replaces each ephemeral mapping (hostPort 0) by single-port mappings on free ports of the kernel's
 * ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), skipping ports held on the host or by
 * `others`, as docker does for `-p 80`.
 */
export function resolveEphemeralPorts(ports: readonly PortMapping[], others: readonly PublishedBy[], host: HostPaths): PortMapping[] {
  const [lo = 32768, hi = 60999] = (readHostText(host, '/proc/sys/net/ipv4/ip_local_port_range') ?? '').trim().split(/\s+/).map(Number);
  const taken = new Set<string>();
  for (const proto of ['tcp', 'udp'] as const) for (const s of hostSockets(host, proto)) taken.add(`${proto}/${s.port}`);
  for (const q of [...others.flatMap((o) => o.ports), ...ports]) for (let i = 0; i < q.count; i++) if (q.hostPort !== 0) taken.add(`${q.protocol}/${q.hostPort + i}`);
  const out: PortMapping[] = [];
  for (const p of ports) {
    if (p.hostPort !== 0) {
      out.push(p);
      continue;
    }
    for (let i = 0; i < p.count; i++) {
      let port = 0;
      // Random start, as the kernel: two creates in a row rarely race for the same port.
      const span = hi - lo + 1;
      const start = Math.floor(Math.random() * span);
      for (let k = 0; k < span && port === 0; k++) {
        const candidate = lo + ((start + k) % span);
        if (!taken.has(`${p.protocol}/${candidate}`)) port = candidate;
      }
      if (port === 0) throw new BerthError('resource', `no free host port left in ${lo}-${hi} for ${p.containerPort + i}/${p.protocol}`);
      taken.add(`${p.protocol}/${port}`);
      out.push({ ...p, hostPort: port, containerPort: p.containerPort + i, count: 1 });
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
