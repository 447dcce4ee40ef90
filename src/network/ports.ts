import { BerthError } from '../errors.js';
import { formatIPv4, parseIPv4 } from './ipv4.js';
import type { ExtraHost, PortMapping } from './types.js';

/**
 * docker's `-p/--publish` short syntax, the only parser of it (compose's short `ports:` entries are
 * the same grammar and will come through here too):
 *
 *   [IP:][HOST[-END]:]CONTAINER[-END][/tcp|/udp]
 *
 * IP is IPv4 or a bracketed IPv6 address (`[::1]:8080:80`); an empty HOST (`127.0.0.1::80`) or none
 * (`80`) asks for an ephemeral host port. A HOST range must be as long as the CONTAINER range, except
 * for a single CONTAINER port (`8000-8010:80`: any free host port of the range, as docker). Errors
 * are `invalid` BerthErrors that quote the whole spec and say which part is wrong.
 */
export function parsePublish(spec: string): PortMapping {
  const bad = (why: string): BerthError => new BerthError('invalid', `-p ${spec}: ${why}`, { hint: 'use [IP:][HOST[-END]:]CONTAINER[-END][/tcp|/udp], e.g. 8080:80 or 127.0.0.1:5353:53/udp' });
  let rest = spec.trim();
  if (rest === '') throw bad('empty port specification');

  let protocol: PortMapping['protocol'] = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const proto = rest.slice(slash + 1).toLowerCase();
    if (proto !== 'tcp' && proto !== 'udp') throw bad(`unknown protocol "${rest.slice(slash + 1)}" (tcp or udp)`);
    protocol = proto;
    rest = rest.slice(0, slash);
  }

  let hostIp = '';
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') throw bad('a bracketed IPv6 address must be followed by ":"');
    hostIp = rest.slice(1, close);
    if (!/^[0-9a-fA-F:.]+$/.test(hostIp) || !hostIp.includes(':')) throw bad(`"${hostIp}" is not an IPv6 address`);
    rest = rest.slice(close + 2);
    const parts = rest.split(':');
    if (parts.length > 2) throw bad('too many ":"-separated parts');
    return mapping(parts.length === 2 ? parts[0]! : '', parts[parts.length - 1]!);
  }

  const parts = rest.split(':');
  if (parts.length > 3) throw bad('too many ":"-separated parts (bracket an IPv6 host address: [::1]:8080:80)');
  if (parts.length === 3) {
    hostIp = parts[0]!;
    if (hostIp === '') throw bad('empty host IP before the first ":"');
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(hostIp)) throw bad(`host IP "${hostIp}" is not an IPv4 address (bracket IPv6 ones: [::1])`);
    parseIPv4(hostIp, `-p ${spec}: host IP`);
  }
  return mapping(parts.length >= 2 ? parts[parts.length - 2]! : '', parts[parts.length - 1]!);

  function mapping(hostText: string, containerText: string): PortMapping {
    const container = range(containerText, 'container port');
    if (hostText === '') return { hostIp, hostPort: 0, containerPort: container.start, count: container.count, protocol };
    const host = range(hostText, 'host port');
    // docker: a host range for a single container port is a choice of host port, not a mapping of ranges.
    if (host.count > 1 && container.count === 1) return { hostIp, hostPort: host.start, hostPortEnd: host.start + host.count - 1, containerPort: container.start, count: 1, protocol };
    if (host.count !== container.count) {
      throw bad(`port range mismatch: host ${hostText} has ${host.count} port${host.count === 1 ? '' : 's'}, container ${containerText} has ${container.count}`);
    }
    return { hostIp, hostPort: host.start, containerPort: container.start, count: container.count, protocol };
  }

  function range(text: string, what: string): { start: number; count: number } {
    const m = /^(\d+)(?:-(\d+))?$/.exec(text);
    if (!m) throw bad(`${what} "${text}" is not a port or a range like 8000-8010`);
    const start = port(m[1]!, what);
    const end = m[2] === undefined ? start : port(m[2], what);
    if (end < start) throw bad(`${what} range ${text} ends before it starts`);
    return { start, count: end - start + 1 };
  }

  function port(text: string, what: string): number {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw bad(`${what} ${text} is out of range 1…65535`);
    return n;
  }
}

/** docker's display form: `0.0.0.0:8080->80/tcp`, ranges as `8080-8081->80-81/tcp`. */
export function formatPortMapping(p: PortMapping): string {
  const r = (start: number): string => (p.count === 1 ? `${start}` : `${start}-${start + p.count - 1}`);
  const ip = p.hostIp === '' ? '0.0.0.0' : p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp;
  const host = p.hostPortEnd === undefined ? r(p.hostPort) : `${p.hostPort}-${p.hostPortEnd}`;
  return `${ip}:${host}->${r(p.containerPort)}/${p.protocol}`;
}

/** True when two mappings claim a common host port of the same protocol on a common address. */
export function portsClash(a: PortMapping, b: PortMapping): boolean {
  if (a.protocol !== b.protocol || a.hostPort === 0 || b.hostPort === 0) return false;
  if (a.hostIp !== '' && b.hostIp !== '' && a.hostIp !== b.hostIp) return false;
  return a.hostPort < b.hostPort + b.count && b.hostPort < a.hostPort + a.count;
}

/** docker's `--add-host NAME:IP` (also `NAME=IP`); IPv4 only for now. */
export function parseAddHost(text: string): ExtraHost {
  const m = /^([^:=\s]+)[:=](.+)$/.exec(text.trim());
  if (!m) throw new BerthError('invalid', `--add-host ${text}: expected NAME:IP, e.g. broker:10.0.0.5`);
  const name = m[1]!;
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})$/.test(name)) throw new BerthError('invalid', `--add-host ${text}: "${name}" is not a host name`);
  return { name, ip: formatIPv4(parseIPv4(m[2]!, `--add-host ${text}`)) };
}

/** A DNS name for `--network-alias` (and compose `aliases`, `dns_search`): one to 63-character labels of letters, digits, `-` and `_`; `what` names the flag or key. */
export function validateNetworkAlias(name: string, what = '--network-alias'): string {
  if (!/^[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62})(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,62}))*$/.test(name) || name.length > 253) {
    throw new BerthError('invalid', `${what}: "${name}" is not a DNS name`);
  }
  return name;
}
