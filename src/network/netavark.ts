import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import { BerthError } from '../errors.js';
import { lockedCommand, type HostLock } from './host-lock.js';
import { dropUnwantedRules, netavarkHostIp, unwantedRules } from './port-families.js';
import { formatPortMapping } from './ports.js';
import { withResolver, type ResolverSource } from './resolver-source.js';
import type { Lease, NetworkDefinition, PortMapping } from './types.js';

const execFileAsync = promisify(execFile);

/**
 * The translation of berth's records into netavark's JSON (netavark 1.4, podman 4's network stack) and
 * the two calls berth makes: `setup NETNS` and `teardown NETNS`. This is the only module that knows
 * netavark's document shape. berth does the IPAM itself (netavark's `host-local` driver means "the
 * caller gives static_ips"); netavark makes the bridge, the veth pair, the addresses, the iptables
 * rules (NAT, port forwarding) and runs aardvark-dns for networks with DNS.
 */

export interface NetavarkTool {
  /** /usr/lib/podman/netavark on Debian. */
  readonly binary: string;
  /** /usr/lib/podman/aardvark-dns on Debian. */
  readonly aardvarkBinary: string;
  /**
   * netavark's state: aardvark-dns's per-network name files and its pid. On tmpfs (/run), as podman:
   * it describes only what runs now, and must not outlive a reboot.
   */
  readonly configDir: string;
  /**
   * Held around every netavark run (see host-lock.ts): host-wide, since the config dir is shared by
   * every berth process. Not netavark's own `aardvark.lock`, which netavark flocks itself.
   */
  readonly lock: HostLock;
  /** iptables, to restore what netavark's teardown removes from other networks (see restoreIsolationJump); absent: not done. */
  readonly iptables?: string;
  /** ip6tables, with iptables, to keep `0.0.0.0:P` and `[::]:P` to their family (port-families.ts); absent: such ports are refused at setup. */
  readonly ip6tables?: string;
  /** Where the aardvark-dns that netavark starts gets its upstream servers (resolver-source.ts), with unshare(1) to apply it. */
  readonly resolver?: { readonly source: ResolverSource; readonly unshare?: string };
}

/** One network a container joins: the definition and the container's lease on it. */
export interface Attachment {
  readonly network: NetworkDefinition;
  readonly lease: Lease;
  /** Interface name inside the container: eth0, eth1 … */
  readonly interfaceName: string;
}

export interface NetavarkRequest {
  readonly containerId: string;
  readonly containerName: string;
  readonly attachments: readonly Attachment[];
  readonly ports: readonly PortMapping[];
}

/** netavark's network options document for one container (the same for setup and teardown). */
export function netavarkDocument(r: NetavarkRequest): object {
  return {
    container_id: r.containerId,
    container_name: r.containerName,
    // Ranges with an ephemeral host port were resolved at create time; netavark needs real ports. None:
    // no key at all, as podman sends it — an empty list makes netavark 1.4 create (and later list and
    // delete) an empty port-forwarding chain, four iptables calls per run for nothing.
    // `0.0.0.0` and `[::]` go as '' (every address, both families), then lose the other family's rules (port-families.ts).
    ...(r.ports.length > 0 && { port_mappings: r.ports.map((p) => ({ host_ip: netavarkHostIp(p.hostIp), container_port: p.containerPort, host_port: p.hostPort, range: p.count, protocol: p.protocol })) }),
    networks: Object.fromEntries(r.attachments.map((a) => [a.network.id, {
      static_ips: [a.lease.ip, ...(a.lease.ip6 !== undefined ? [a.lease.ip6] : [])],
      // aardvark-dns 1.4 serves the container name plus these (the name itself is not repeated).
      aliases: a.lease.names.filter((n) => n !== r.containerName),
      interface_name: a.interfaceName,
    }])),
    network_info: Object.fromEntries(r.attachments.map(({ network: n }) => [n.id, {
      // The id, not the name, is netavark's key: aardvark's files are named by it, and names are only
      // unique within one berth state root while /run/berth/netavark is shared by all.
      name: n.id,
      id: n.id,
      driver: n.driver,
      network_interface: n.bridge,
      // Dual-stack: netavark adds the v6 address, route, NAT and port forwarding; aardvark-dns answers AAAA.
      subnets: [{ subnet: n.subnet, gateway: n.gateway }, ...(n.ipv6Subnet !== undefined ? [{ subnet: n.ipv6Subnet, gateway: n.ipv6Gateway }] : [])],
      ipv6_enabled: n.ipv6Subnet !== undefined,
      internal: n.internal,
      dns_enabled: n.dnsEnabled,
      ipam_options: { driver: 'host-local' },
      options: bridgeOptions(n.options),
    }])),
  };
}

/**
 * netavark's bridge options from berth's: networks are isolated from each other as docker's are
 * (netavark's `isolate`, off by default in podman); the MTU under either spelling.
 */
function bridgeOptions(o: Readonly<Record<string, string>>): Record<string, string> {
  const mtu = o.mtu ?? o['com.docker.network.driver.mtu'];
  return { isolate: o.isolate ?? 'true', ...(mtu !== undefined && { mtu }) };
}

/** What `setup` reports per network: the addresses and the DNS servers to put in resolv.conf. */
export interface SetupResult {
  readonly [networkId: string]: {
    readonly dns_server_ips?: readonly string[];
    readonly dns_search_domains?: readonly string[];
    readonly interfaces: Readonly<Record<string, { readonly mac_address: string; readonly subnets?: ReadonlyArray<{ readonly ipnet: string; readonly gateway?: string }> }>>;
  };
}

/**
 * Connects the container's netns to its networks, with wildcard ports kept to their family. On failure
 * nothing stays: netavark undoes its own part, and a failed family restriction tears the setup down.
 */
export async function netavarkSetup(tool: NetavarkTool, netnsPath: string, r: NetavarkRequest): Promise<SetupResult> {
  const out = await runNetavark(tool, 'setup', netnsPath, netavarkDocument(r));
  const unwanted = r.attachments.flatMap((a) => unwantedRules(r.containerId, a.network.id, a.lease.ip, a.lease.ip6, r.ports));
  if (unwanted.length > 0) {
    try {
      if (tool.iptables === undefined || tool.ip6tables === undefined) {
        throw new BerthError('host', `-p ${formatPortMapping(unwanted[0]!.port)}: keeping a wildcard port to one address family needs iptables and ip6tables`, { hint: 'apt-get install iptables' });
      }
      await dropUnwantedRules({ iptables: tool.iptables, ip6tables: tool.ip6tables }, unwanted, (p) => `-p ${formatPortMapping(p)}`);
    } catch (err) {
      await runNetavark(tool, 'teardown', netnsPath, netavarkDocument(r)).catch(() => undefined);
      throw err;
    }
  }
  return JSON.parse(out) as SetupResult;
}

/**
 * Removes the veth, the addresses' firewall and port-forwarding rules and the container's DNS names;
 * the bridge and aardvark-dns go when their last container does. The netns itself is the caller's.
 */
export async function netavarkTeardown(tool: NetavarkTool, netnsPath: string, r: NetavarkRequest): Promise<void> {
  await runNetavark(tool, 'teardown', netnsPath, netavarkDocument(r));
  if (tool.iptables !== undefined && r.attachments.some((a) => bridgeOptions(a.network.options).isolate === 'true')) await restoreIsolationJump(tool.iptables);
}

/**
 * netavark 1.4's teardown of an isolated network's last container deletes FORWARD's jump to
 * NETAVARK_ISOLATION_1, which every isolated network shares (measured: two isolated networks up, one
 * torn down, the jump gone while the other's rules stay), so isolation between the networks still up
 * is off until some later setup puts it back. Put it back at once while NETAVARK_ISOLATION_1 still
 * has rules (some isolated network is up). Absent chain: nothing isolated is up, nothing to do.
 */
async function restoreIsolationJump(iptables: string): Promise<void> {
  const run = (args: string[]) => execFileAsync(iptables, ['-w', ...args], { timeout: 10_000 });
  let rules: string;
  try {
    rules = (await run(['-S', 'NETAVARK_ISOLATION_1'])).stdout;
  } catch {
    return;
  }
  if (!rules.split('\n').some((l) => l.startsWith('-A NETAVARK_ISOLATION_1 '))) return;
  try {
    await run(['-C', 'FORWARD', '-j', 'NETAVARK_ISOLATION_1']);
  } catch {
    await run(['-I', 'FORWARD', '1', '-j', 'NETAVARK_ISOLATION_1']);
  }
}

function runNetavark(tool: NetavarkTool, command: 'setup' | 'teardown', netnsPath: string, doc: object): Promise<string> {
  const args = ['--config', tool.configDir, '--rootless', 'false', '--aardvark-binary', tool.aardvarkBinary, command, netnsPath];
  // netavark makes its aardvark-dns directory but not the config directory itself.
  fs.mkdirSync(tool.configDir, { recursive: true, mode: 0o700 });
  return new Promise((resolve, reject) => {
    // aardvark-dns, started by netavark, outlives it but daemonizes with its stdio closed (measured:
    // 'close' follows 'exit' within 2 ms), so waiting for the drained streams does not hang.
    const locked = withResolver(tool.resolver?.source ?? {}, tool.resolver?.unshare, lockedCommand(tool.lock, tool.binary, args));
    const child = spawn(locked.command, locked.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new BerthError('host', `cannot run ${tool.binary}: ${err.message}`, { cause: err, hint: 'apt-get install netavark aardvark-dns (see berth doctor)' })));
    child.on('close', (code) => {
      if (code === 0) return resolve(stdout);
      // netavark 1.4 prints its JSON error on stdout; aardvark-dns's chatter goes to stderr.
      reject(new BerthError('runtime', `netavark ${command} failed: ${netavarkMessage(`${stderr}\n${stdout}`) || `exit status ${code}`}`));
    });
    child.stdin.end(JSON.stringify(doc));
  });
}

/**
 * netavark prints `{"error": "..."}` (on stdout, in 1.4), possibly beside aardvark-dns's own chatter ("failed to
 * connect to syslog"); the JSON line is the message, else all of stderr is.
 */
export function netavarkMessage(stderr: string): string {
  for (const line of stderr.split('\n').reverse()) {
    if (!line.trim().startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as { error?: unknown };
      if (typeof j.error === 'string') return j.error;
    } catch {
      // not JSON after all
    }
  }
  return stderr.trim();
}
