import type { ExtraHost } from './types.js';

/**
 * The /etc/resolv.conf and /etc/hosts a bridged container gets (bind-mounted from its directory), as
 * docker writes them: pure text builders, so they are tested without a container.
 */

/**
 * resolv.conf: `--dns` servers when given; else the network's DNS (aardvark-dns on the gateway, which
 * forwards other names to the host's resolvers); else the host's own servers minus loopback ones,
 * which mean nothing inside the container's namespace. `--dns-search`/`--dns-option` (compose
 * dns_search/dns_opt) replace the search domains and options, as docker's do.
 */
export function resolvConf(opts: { dns?: readonly string[]; dnsSearch?: readonly string[]; dnsOptions?: readonly string[]; networkDns: readonly string[]; searchDomains: readonly string[]; hostResolvConf?: string }): string {
  const host = parseResolvConf(opts.hostResolvConf ?? '');
  const servers = opts.dns && opts.dns.length > 0 ? opts.dns : opts.networkDns.length > 0 ? opts.networkDns : host.nameservers.filter((s) => !s.startsWith('127.') && s !== '::1');
  const search = opts.dnsSearch ?? [...opts.searchDomains, ...host.search.filter((d) => !opts.searchDomains.includes(d))];
  return [
    ...(search.length > 0 ? [`search ${search.join(' ')}`] : []),
    ...servers.map((s) => `nameserver ${s}`),
    ...(opts.dnsOptions ?? host.options).map((o) => `options ${o}`),
    '',
  ].join('\n');
}

function parseResolvConf(text: string): { nameservers: string[]; search: string[]; options: string[] } {
  const out = { nameservers: [] as string[], search: [] as string[], options: [] as string[] };
  for (const line of text.split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (key === 'nameserver' && rest[0]) out.nameservers.push(rest[0]);
    else if (key === 'search' || key === 'domain') out.search = rest;
    else if (key === 'options') out.options.push(...rest);
  }
  return out;
}

/** /etc/hosts: loopback, the container's own address with its hostname, then `--add-host` entries. */
export function hostsFile(opts: { hostname: string; ip?: string; extraHosts: readonly ExtraHost[] }): string {
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    ...(opts.ip !== undefined ? [`${opts.ip}\t${opts.hostname}`] : [`127.0.1.1\t${opts.hostname}`]),
    ...opts.extraHosts.map((h) => `${h.ip}\t${h.name}`),
    '',
  ].join('\n');
}
