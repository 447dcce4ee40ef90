import fs from 'node:fs';
import zlib from 'node:zlib';
import { readHostText } from '../host/read.js';
import { which } from '../host/which.js';
import { findHelper, INSTALL_HINT } from '../network/tools.js';
import type { Check, DoctorContext } from './types.js';

/**
 * What bridge networking needs (src/network): netavark and aardvark-dns, iptables (netavark 1.4's
 * firewall driver; iptables-nft on Debian) and iproute2 in userspace; bridge, veth, nf_tables, the
 * x_tables compatibility iptables-nft uses, NAT and masquerading in the kernel. Missing pieces are
 * warnings: containers with `--network none|host` (and `container:X` of those) still run, though bridge
 * is `berth run`'s default.
 */

/** Tools are looked for in podman's helper directories, then on this PATH (both overridable for tests). */
export function networkToolsCheck(helperDirs?: readonly string[]): Check {
  return (ctx) => {
    const title = 'network tools (netavark, aardvark-dns, iptables, ip, flock)';
    const found = {
      netavark: findHelper('netavark', ctx.searchPath, helperDirs),
      'aardvark-dns': findHelper('aardvark-dns', ctx.searchPath, helperDirs),
      iptables: which('iptables', ctx.searchPath),
      ip: which('ip', ctx.searchPath),
      // berth runs netavark under flock(1): concurrent runs from separate processes orphan aardvark-dns.
      flock: which('flock', ctx.searchPath),
    };
    const missing = Object.entries(found).filter(([, exe]) => exe === undefined).map(([name]) => name);
    if (missing.length === 0) return { id: 'network-tools', title, status: 'ok', detail: Object.values(found).join(', ') };
    return {
      id: 'network-tools', title, status: 'warn',
      // bridge is berth run's default (as docker's): without these, a plain `berth run` fails too.
      detail: `${missing.join(', ')} not found: bridge networking cannot work — berth run's default network, -p and compose networks; --network none and host still work`,
      fix: installLine(missing),
    };
  };
}

/** The fix for missing tools: netavark's install line, and the packages of the others (ip, flock). */
function installLine(missing: readonly string[]): string {
  const others = missing.map((m) => ({ ip: 'iproute2', flock: 'util-linux' })[m]).filter((p) => p !== undefined);
  const lines = missing.some((m) => ['netavark', 'aardvark-dns', 'iptables'].includes(m)) ? [INSTALL_HINT] : [];
  if (others.length > 0) lines.push(`apt-get install ${others.join(' ')}`);
  return lines.join('; ');
}

/** A kernel feature: its config option, a symbol it exports once built in or loaded, and its module. */
const FEATURES = [
  { name: 'bridge', config: 'CONFIG_BRIDGE', symbol: 'br_dev_xmit', module: 'bridge' },
  { name: 'veth', config: 'CONFIG_VETH', symbol: 'veth_xmit', module: 'veth' },
  { name: 'nf_tables', config: 'CONFIG_NF_TABLES', symbol: 'nft_do_chain', module: 'nf_tables' },
  { name: 'x_tables (iptables-nft)', config: 'CONFIG_NETFILTER_XTABLES', symbol: 'xt_register_match', module: 'x_tables' },
  { name: 'NAT', config: 'CONFIG_NF_NAT', symbol: 'nf_nat_setup_info', module: 'nf_nat' },
  { name: 'masquerade', config: 'CONFIG_NETFILTER_XT_TARGET_MASQUERADE', symbol: 'nf_nat_masquerade_ipv4', module: 'xt_MASQUERADE' },
] as const;

/**
 * Kernel support, from the first source the host has: /proc/config.gz (y or m), else exported symbols
 * in /proc/kallsyms (built in or loaded) together with /lib/modules/<release>/modules.{builtin,dep}
 * (loadable). With none of them readable, the check says it cannot tell.
 */
export const networkKernelCheck: Check = (ctx) => {
  const title = 'kernel networking (bridge, veth, nf_tables, NAT)';
  const have = kernelProbe(ctx);
  if (have === undefined) return { id: 'network-kernel', title, status: 'warn', detail: 'cannot tell: no /proc/config.gz, /proc/kallsyms or /lib/modules here', fix: 'modprobe configs, then run berth doctor again' };
  const missing = FEATURES.filter((f) => !have(f));
  if (missing.length === 0) return { id: 'network-kernel', title, status: 'ok', detail: `${FEATURES.map((f) => f.name).join(', ')} available` };
  return {
    id: 'network-kernel', title, status: 'warn',
    detail: `the kernel lacks ${missing.map((f) => f.name).join(', ')}: bridge networking cannot work`,
    fix: `use a kernel with ${missing.map((f) => `${f.config}=y or =m`).join(', ')} (Raspberry Pi OS and Debian kernels have them)`,
  };
};

function kernelProbe(ctx: DoctorContext): ((f: (typeof FEATURES)[number]) => boolean) | undefined {
  const gz = ctx.host.resolve('/proc/config.gz');
  if (fs.existsSync(gz)) {
    const config = zlib.gunzipSync(fs.readFileSync(gz)).toString('utf8');
    return (f) => new RegExp(`^${f.config}=[ym]$`, 'm').test(config);
  }
  const kallsyms = readHostText(ctx.host, '/proc/kallsyms');
  const release = readHostText(ctx.host, '/proc/sys/kernel/osrelease')?.trim();
  const modules = release === undefined ? undefined : [readHostText(ctx.host, `/lib/modules/${release}/modules.builtin`), readHostText(ctx.host, `/lib/modules/${release}/modules.dep`)].join('\n');
  if (kallsyms === undefined && !modules?.trim()) return undefined;
  const symbols = new Set((kallsyms ?? '').split('\n').map((l) => l.split(' ')[2]));
  return (f) => symbols.has(f.symbol) || new RegExp(`/${f.module}\\.ko`).test(modules ?? '');
}
