import net from 'node:net';
import path from 'node:path';
import { BerthError } from '../errors.js';
import type { DesiredState, TopLevelExternal, TopLevelFile, TopLevelNetwork, ResourceLabels, TopLevelVolume } from '../protocol/types.js';
import { validateBridgeOptions } from '../network/bridge-options.js';
import { parseLabel } from '../runtime/options.js';
import type { AppFile, AppNetwork, AppVolume } from './model.js';

/**
 * A desired state's top-level `volumes`, `networks`, `configs` and `secrets` → the app model's records
 * (compose's semantics: `<app>_<key>` names, `external`, the local driver's bind/tmpfs options, one IPAM
 * subnet per network). Pure: what needs the compose file's folder or the environment (reading
 * `file:`, relative paths) was done by the reader (file-*.ts) before the desired state was made.
 */

/** The most bytes one config or secret may hold (desired.json bounds its base64 to match). */
export const MAX_APP_FILE_BYTES = 128 * 1024;

/** The app's volumes, networks, configs and secrets, by key. */
export interface AppResources {
  readonly volumes: ReadonlyMap<string, AppVolume>;
  readonly networks: ReadonlyMap<string, AppNetwork>;
  readonly configs: ReadonlyMap<string, AppFile>;
  readonly secrets: ReadonlyMap<string, AppFile>;
}

/** The network compose gives services that name none. */
export const DEFAULT_NETWORK = 'default';

/**
 * Normalizes the top-level sections of `desired` for the app `app` whose data directory is `dataDir`
 * (relative local-driver bind devices resolve there). Throws BerthError('invalid') naming the key.
 */
export function appResources(desired: DesiredState, app: string, dataDir: string): AppResources {
  const networks = new Map<string, AppNetwork>(Object.entries(desired.networks ?? {}).map(([k, n]) => [k, network(app, k, n ?? {})]));
  if (!networks.has(DEFAULT_NETWORK) && Object.values(desired.services).some(usesDefaultNetwork)) {
    networks.set(DEFAULT_NETWORK, network(app, DEFAULT_NETWORK, {}));
  }
  return {
    volumes: new Map(Object.entries(desired.volumes ?? {}).map(([k, v]) => [k, volume(app, k, v ?? {}, dataDir)])),
    networks: new Map([...networks].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    configs: files('configs', desired.configs),
    secrets: files('secrets', desired.secrets),
  };
}

/** compose: a service is on `default` when it names no network and no network_mode, or names `default`. */
export function usesDefaultNetwork(svc: object): boolean {
  const s = svc as { network_mode?: unknown; networks?: unknown };
  if (s.network_mode !== undefined) return false;
  if (s.networks === undefined || s.networks === null) return true;
  return networkKeys(s.networks).includes(DEFAULT_NETWORK);
}

/** The network keys a service's `networks:` names (a list, or a mapping of per-network options). */
export function networkKeys(networks: unknown): string[] {
  if (Array.isArray(networks)) return networks.filter((n): n is string => typeof n === 'string');
  return networks !== null && typeof networks === 'object' ? Object.keys(networks) : [];
}

function invalid(where: string, message: string): BerthError {
  return new BerthError('invalid', `${where}: ${message}`);
}

/** The host-side name: an external one's own (legacy `external.name`, else `name`, else the key), else `name` or `<app>_<key>`. */
function hostName(app: string, key: string, spec: { name?: string; external?: TopLevelExternal }): { external: boolean; hostName: string } {
  const ext = spec.external;
  if (ext !== undefined && ext !== false) return { external: true, hostName: (typeof ext === 'object' ? ext.name : undefined) ?? spec.name ?? key };
  return { external: false, hostName: spec.name ?? `${app}_${key}` };
}

/** An external volume or network is made elsewhere: options that would shape it are a mistake, said so. */
function refuseOnExternal(where: string, spec: object, keys: readonly string[]): void {
  for (const k of keys) if (k in spec) throw invalid(`${where}.${k}`, `an external ${where.split('.')[0]!.slice(0, -1)} is made outside this app and takes no ${k}`);
}

const text = (v: string | number | boolean | null): string => (v === null ? '' : String(v));

function labels(l: ResourceLabels | undefined): Record<string, string> {
  if (l === undefined) return {};
  if (Array.isArray(l)) return Object.fromEntries((l as readonly string[]).map(parseLabel));
  return Object.fromEntries(Object.entries(l as Record<string, string | number | boolean | null>).map(([k, v]) => [k, text(v)]));
}

const options = (o: Readonly<Record<string, string | number | boolean>> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, text(v)]));

/** The local driver's options: none (a directory berth makes), a bind (`type: none`, `o: bind`, `device`), or a tmpfs. */
function localDriverOpts(where: string, opts: Record<string, string>, dataDir: string): Record<string, string> {
  for (const k of Object.keys(opts)) {
    if (k !== 'type' && k !== 'o' && k !== 'device') throw invalid(`${where}.${k}`, 'the local driver takes only type, o and device');
  }
  if (Object.keys(opts).length === 0) return opts;
  const type = opts.type;
  const o = (opts.o ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (type === 'tmpfs') return opts;
  if (type === 'none' || type === undefined) {
    if (!o.includes('bind') && !o.includes('rbind')) throw invalid(`${where}.o`, 'a local volume on a host directory needs o: bind (with type: none and device: PATH)');
    const device = opts.device;
    if (device === undefined || device === '') throw invalid(`${where}.device`, 'a bind volume needs the host directory as device');
    if (device.split('/').includes('..')) throw invalid(`${where}.device`, `"${device}" must not contain ".."`);
    // A relative device (left so by a fleet deploy's reader) lives in the app's data directory, as relative bind sources do.
    return { ...opts, device: path.isAbsolute(device) ? path.posix.normalize(device) : path.join(dataDir, device) };
  }
  throw invalid(`${where}.type`, `berth's local volumes are directories, binds (type: none, o: bind) or tmpfs; "${type}" would be a filesystem mount berth does not make`);
}

function volume(app: string, key: string, spec: TopLevelVolume, dataDir: string): AppVolume {
  const where = `volumes.${key}`;
  const { external, hostName: name } = hostName(app, key, spec);
  if (external) refuseOnExternal(where, spec, ['driver', 'driver_opts', 'labels']);
  return { name: key, hostName: name, external, driverOpts: localDriverOpts(`${where}.driver_opts`, options(spec.driver_opts), dataDir), labels: labels(spec.labels) };
}

/** An address of one family; CIDR with a prefix that fits it. */
function checkAddress(where: string, value: string, cidr: boolean): number {
  const [addr = '', prefix, ...rest] = value.split('/');
  const family = net.isIP(addr);
  const bits = family === 4 ? 32 : 128;
  if (family === 0 || rest.length > 0 || (cidr ? prefix === undefined || Number(prefix) > bits : prefix !== undefined)) {
    throw invalid(where, `"${value}" is not ${cidr ? 'an address/prefix (CIDR) subnet' : 'an IP address'}`);
  }
  return family;
}

/**
 * `ipam.config`: at most one entry per address family (berth gives a network one subnet of each). The
 * IPv6 entry needs `enable_ipv6: true`, as docker refuses it without.
 */
function ipam(where: string, spec: TopLevelNetwork['ipam'], enableIpv6: boolean): Pick<AppNetwork, 'ipam' | 'ipam6'> {
  const config = spec?.config ?? [];
  const out: { ipam?: AppNetwork['ipam']; ipam6?: AppNetwork['ipam6'] } = {};
  config.forEach((c, i) => {
    const at = `${where}.config[${i}]`;
    const families = [
      c.subnet !== undefined && checkAddress(`${at}.subnet`, c.subnet, true),
      c.gateway !== undefined && checkAddress(`${at}.gateway`, c.gateway, false),
      c.ip_range !== undefined && checkAddress(`${at}.ip_range`, c.ip_range, true),
    ].filter((f) => f !== false);
    if (new Set(families).size > 1) throw invalid(at, 'subnet, gateway and ip_range must all be IPv4 or all IPv6');
    if (c.subnet === undefined && (c.gateway !== undefined || c.ip_range !== undefined)) throw invalid(`${at}.subnet`, 'a gateway or ip_range needs the subnet it lies in');
    if (families[0] === 6) {
      if (!enableIpv6) throw invalid(`${at}.subnet`, `${c.subnet} is an IPv6 subnet: the network needs enable_ipv6: true`);
      if (c.ip_range !== undefined) throw invalid(`${at}.ip_range`, 'berth allocates IPv6 addresses from the whole subnet');
      if (out.ipam6) throw invalid(at, 'berth gives a network one IPv6 subnet (one IPv6 ipam.config entry)');
      out.ipam6 = { subnet: c.subnet!, ...(c.gateway !== undefined && { gateway: c.gateway }) };
    } else {
      if (out.ipam) throw invalid(at, 'berth gives a network one IPv4 subnet (one IPv4 ipam.config entry)');
      out.ipam = { ...(c.subnet !== undefined && { subnet: c.subnet }), ...(c.gateway !== undefined && { gateway: c.gateway }), ...(c.ip_range !== undefined && { ipRange: c.ip_range }) };
    }
  });
  return out;
}

function network(app: string, key: string, spec: TopLevelNetwork): AppNetwork {
  const where = `networks.${key}`;
  const { external, hostName: name } = hostName(app, key, spec);
  if (external) refuseOnExternal(where, spec, ['driver_opts', 'ipam', 'internal', 'enable_ipv6', 'labels']);
  const enableIpv6 = spec.enable_ipv6 ?? false;
  const driverOpts = options(spec.driver_opts);
  validateBridgeOptions(driverOpts, (k) => `${where}.driver_opts.${k}`);
  return {
    name: key, hostName: name, external, internal: spec.internal ?? false, driverOpts,
    ...ipam(`${where}.ipam`, spec.ipam, enableIpv6), enableIpv6, labels: labels(spec.labels),
  };
}

function files(section: 'configs' | 'secrets', specs: Readonly<Record<string, TopLevelFile>> | undefined): Map<string, AppFile> {
  return new Map(
    Object.entries(specs ?? {}).map(([name, { content }]) => {
      // The schema bounds the text; the decoded size is what the limit is about (padding makes them differ slightly).
      if (Buffer.byteLength(content, 'base64') > MAX_APP_FILE_BYTES) throw invalid(`${section}.${name}.content`, `over ${MAX_APP_FILE_BYTES} bytes`);
      return [name, { name, content }];
    }),
  );
}
