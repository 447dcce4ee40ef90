import { formatIPv4, parseIPv4 } from '../network/ipv4.js';
import { cidr6Contains, formatIPv6, parseCidr6, parseIPv6 } from '../network/ipv6.js';
import { parseAddHost, parsePublish, validateNetworkAlias } from '../network/ports.js';
import type { PortMapping } from '../network/types.js';
import { parseDnsOption, parseExpose, type NetworkEndpoint, type RunOptions } from '../runtime/options.js';
import type { PortSpec, ServiceNetworkSpec, ServiceSpec } from '../protocol/types.js';
import { containerName } from './labels.js';
import type { AppNetwork, ServiceContext } from './model.js';
import { atKey, invalidAt, keyPath } from './service-key.js';

/**
 * A service's networking keys → RunOptions (the runtime side is src/network): network_mode, networks
 * (list and map form) as endpoints on the app's networks, ports (short and long syntax, through `-p`'s
 * parser), dns, dns_search, dns_opt, extra_hosts, expose, hostname, domainname. The service name and
 * its container_name are DNS aliases on every network it joins, as compose makes them.
 */

type Networking = Pick<RunOptions, 'network' | 'endpoints' | 'ports' | 'dns' | 'dnsSearch' | 'dnsOptions' | 'extraHosts' | 'expose' | 'hostname' | 'domainname'>;

/** A long-syntax port as the short syntax's text, so parsePublish stays the one reader of a port. */
function portText(p: string | number | PortSpec): string {
  if (typeof p !== 'object') return String(p);
  const ip = p.host_ip === undefined ? '' : p.host_ip.includes(':') ? `[${p.host_ip}]:` : `${p.host_ip}:`;
  const published = p.published === undefined ? (ip === '' ? '' : ':') : `${p.published}:`;
  return `${ip}${published}${p.target}/${p.protocol ?? 'tcp'}`;
}

/**
 * Ports under `network_mode: host`: the container's ports already are the host's, so a mapping of a
 * port onto itself (or onto an ephemeral one) says nothing more and is dropped, as docker discards
 * it; one that asks for another host port cannot be honoured and is refused.
 */
function hostModePorts(service: string, ports: readonly PortMapping[]): undefined {
  const moved = ports.find((p) => p.hostPort !== 0 && (p.hostPort !== p.containerPort || p.hostPortEnd !== undefined));
  if (moved) throw invalidAt(keyPath(service, 'ports'), `${moved.hostPort}→${moved.containerPort}: with network_mode: host the container's ports are the host's and cannot be moved`, 'remove the mapping, or use a bridge network');
  return undefined;
}

/**
 * A namespace mode (`network_mode`, `pid`, `ipc`) with compose's `service:S` resolved to S's container
 * (`container:<S>.<hash>`; service-hash.ts folds S's hash into this service's and refuses S = this
 * service or a loop); other values as written.
 */
export function joinedServiceMode(service: string, key: 'network_mode' | 'pid' | 'ipc', mode: string, ctx: ServiceContext): string {
  if (!mode.startsWith('service:')) return mode;
  const other = mode.slice('service:'.length);
  const hash = ctx.hashes.get(other);
  if (hash === undefined) throw invalidAt(keyPath(service, key), `service "${other}" is not in this app`);
  return `container:${containerName(other, hash)}`;
}

/** Higher `priority` first (compose's order of joining), then as written. */
function networkEntries(nets: NonNullable<ServiceSpec['networks']>): Array<[string, ServiceNetworkSpec]> {
  if (Array.isArray(nets)) return (nets as readonly string[]).map((n) => [n, {}]);
  return Object.entries(nets as Record<string, ServiceNetworkSpec | null>).map(([n, s], i) => ({ n, s: s ?? {}, i }))
    .sort((a, b) => (b.s.priority ?? 0) - (a.s.priority ?? 0) || a.i - b.i).map(({ n, s }) => [n, s]);
}

function endpoints(service: string, svc: ServiceSpec, ctx: ServiceContext): NetworkEndpoint[] | undefined {
  const entries = svc.networks === undefined ? (ctx.networks.has('default') ? [['default', {}] as [string, ServiceNetworkSpec]] : []) : networkEntries(svc.networks);
  if (entries.length === 0) return undefined;
  const own = [service, ...(svc.container_name !== undefined ? [svc.container_name] : [])];
  return entries.map(([key, s]) => {
    const at = keyPath(service, `networks.${key}`);
    const net = ctx.networks.get(key);
    if (net === undefined) throw invalidAt(at, `network "${key}" is not declared under the top-level networks:`);
    const aliases = [...new Set([...own, ...(s.aliases ?? [])])].map((a) => validateNetworkAlias(a, `${at}.aliases`));
    return {
      network: net.hostName, aliases, ...(s.ipv4_address !== undefined && { ipv4Address: formatIPv4(parseIPv4(s.ipv4_address, `${at}.ipv4_address`)) }),
      ...(s.ipv6_address !== undefined && { ipv6Address: ipv6Address(s.ipv6_address, `${at}.ipv6_address`, net) }),
    };
  });
}

const list = (v: string | readonly string[] | undefined): readonly string[] => (v === undefined ? [] : typeof v === 'string' ? [v] : v);

export function serviceNetworking(service: string, svc: ServiceSpec, ctx: ServiceContext): Networking {
  const k = (key: string): string => keyPath(service, key);
  if (svc.network_mode !== undefined && svc.networks !== undefined) throw invalidAt(k('networks'), 'cannot be combined with network_mode');
  const eps = svc.network_mode === undefined ? endpoints(service, svc, ctx) : undefined;
  const network = svc.network_mode !== undefined ? joinedServiceMode(service, 'network_mode', svc.network_mode, ctx) : eps?.[0]?.network ?? 'private';
  const ports = (svc.ports ?? []).map((p) => atKey(k('ports'), () => parsePublish(portText(p))));
  const publish = network === 'host' ? hostModePorts(service, ports) : ports;
  const extraHosts = svc.extra_hosts === undefined ? [] : Array.isArray(svc.extra_hosts) ? svc.extra_hosts as readonly string[] : Object.entries(svc.extra_hosts).map(([h, ip]) => `${h}:${ip}`);
  const dnsSearch = list(svc.dns_search).map((d) => validateNetworkAlias(d, k('dns_search')));
  return {
    network,
    ...(eps !== undefined && { endpoints: eps }),
    ...(publish !== undefined && publish.length > 0 && { ports: publish }),
    ...(svc.dns !== undefined && { dns: list(svc.dns).map((d) => formatIPv4(parseIPv4(d, k('dns')))) }),
    ...(dnsSearch.length > 0 && { dnsSearch }),
    ...(svc.dns_opt !== undefined && { dnsOptions: svc.dns_opt.map((o) => parseDnsOption(o, k('dns_opt'))) }),
    ...(extraHosts.length > 0 && { extraHosts: extraHosts.map((h) => atKey(k('extra_hosts'), () => parseAddHost(h))) }),
    ...(svc.expose !== undefined && { expose: svc.expose.map((e) => parseExpose(e, k('expose'))) }),
    ...(svc.hostname !== undefined && { hostname: svc.hostname }),
    ...(svc.domainname !== undefined && { domainname: svc.domainname }),
  };
}

/**
 * compose's ipv6_address: on a network with enable_ipv6, and inside its IPv6 subnet when the file gives
 * one (with a random one, the lease refuses it). Errors name the key.
 */
function ipv6Address(text: string, at: string, net: AppNetwork): string {
  const addr = parseIPv6(text, at);
  if (!net.external && !net.enableIpv6) throw invalidAt(at, `${text} needs IPv6 on network "${net.name}": add enable_ipv6: true to it`);
  if (net.ipam6 !== undefined && !cidr6Contains(parseCidr6(net.ipam6.subnet, `networks.${net.name}.ipam`), addr)) {
    throw invalidAt(at, `${text} is not inside the network's IPv6 subnet ${net.ipam6.subnet}`);
  }
  return formatIPv6(addr);
}
