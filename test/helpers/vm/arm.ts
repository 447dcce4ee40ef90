import fs from 'node:fs';
import path from 'node:path';
import { buildBundle } from '../../../src/flash/bundle.js';
import type { BundleArch } from '../../../src/flash/elf.js';
import { REPO, requireBuilt } from '../dist.js';
import { busyboxBinary, TEST_ARCHES } from '../images/build.js';
import { prepareGuest } from './guest.js';
import { runVm } from './qemu.js';
import { collectGuestRun, type GuestSuiteRun } from './suite.js';

/**
 * The arm64 VM (`npm run test:arm`): Debian's arm64 kernel under qemu-system-aarch64 (TCG), a root
 * filesystem of Debian arm64 packages (scripts/setup.sh assembles it), the checkout shared at its own path,
 * and the agent bundles `berth flash` installs on boards (src/flash/bundle.ts: the official Node builds and
 * berth's native parts cross-built for arm64 and armv7l): their Node runs the guest, their native builds
 * are bind-mounted over the checkout's x86 ones. The bundles are cached in .cache/bundle.
 */

const checkout = REPO.replace(/\/$/, '');
export const ARM_ROOTFS = path.join(checkout, '.cache', 'vm', 'arm64-rootfs');

/**
 * Bridge networking's kernel side, loaded at boot as a board's kernel has it (built in or by modprobe):
 * netavark's bridges and veth pairs, and what iptables-nft's rules use — native nft expressions (conntrack
 * state, NAT, masquerade) and, through nft_compat, the x_tables matches and targets netavark 1.4 writes
 * (addrtype, comment, mark, multiport, MASQUERADE, DNAT/SNAT). The guest has no /lib/modules, and the
 * kernel's own modprobe calls would run in the initramfs, which has no modprobe: each is named here.
 * scripts/setup.sh extracts them (VM_NET_MODULES). crc32c_generic first: libcrc32c (conntrack's and
 * nf_tables' dependency) only soft-depends on it (`softdep=pre: crc32c`), and fails to load without it.
 */
export const ARM_NET_MODULES = [
  'crc32c_generic', 'veth', 'bridge', 'nft_compat', 'nft_chain_nat', 'nft_ct', 'nft_nat', 'nft_masq',
  'xt_conntrack', 'xt_comment', 'xt_addrtype', 'xt_mark', 'xt_multiport', 'xt_tcpudp', 'xt_MASQUERADE', 'xt_nat',
];

/** The agent bundles for arm64 and (32-bit) arm, built or taken from the cache. */
export async function armBundles(): Promise<Record<Exclude<BundleArch, 'armv6'>, string>> {
  const log = (l: string): void => console.log(`bundle: ${l}`);
  // One after the other: each cross build alone takes both cores.
  const arm64 = await buildBundle({ arch: 'arm64', packageRoot: checkout, log });
  const arm = await buildBundle({ arch: 'arm', packageRoot: checkout, log });
  return { arm64, arm };
}

export interface ArmSuiteOptions {
  readonly memoryMiB?: number;
  readonly timeoutMs?: number;
}

/**
 * Boots the arm64 VM running `test/arm/guest/<name>.ts` under the arm64 bundle's Node, with berth's dist/
 * from the checkout and the bundle's native parts; the 32-bit bundle's Node and better-sqlite3 build are
 * handed to the guest (ARM32_NODE, ARM32_SQLITE_BUILD) for the 32-bit userland it sets up itself.
 */
export async function runArmSuite(name: string, opts: ArmSuiteOptions = {}): Promise<GuestSuiteRun> {
  requireBuilt();
  if (!fs.existsSync(path.join(ARM_ROOTFS, '.berth-key'))) {
    throw new Error(`no arm64 root filesystem in ${ARM_ROOTFS}: run scripts/setup.sh (as root), it assembles it`);
  }
  const [bundles] = await Promise.all([armBundles(), ...TEST_ARCHES.map(busyboxBinary)]);
  const sqliteBuild = (b: string): string => path.join(b, 'node_modules', 'better-sqlite3', 'build');
  const outDir = path.join(checkout, '.cache', 'vm', 'runs', name);
  const guest = await prepareGuest(name, outDir, {
    PATH: `${path.join(bundles.arm64, 'node', 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    ARM32_NODE: path.join(bundles.arm, 'node', 'bin', 'node'),
    ARM32_SQLITE_BUILD: sqliteBuild(bundles.arm),
  }, { sourceDir: path.join(checkout, 'test', 'arm', 'guest'), cc: 'aarch64-linux-gnu-gcc' });
  const vm = await runVm({
    arch: 'arm64', rootDir: ARM_ROOTFS, repoDir: checkout, outDir, script: guest.script,
    binds: [
      { from: sqliteBuild(bundles.arm64), to: path.join(checkout, 'node_modules', 'better-sqlite3', 'build') },
      { from: path.join(bundles.arm64, 'native', 'build'), to: path.join(checkout, 'native', 'build') },
    ],
    modules: ARM_NET_MODULES,
    memoryMiB: opts.memoryMiB ?? 1024, cpus: 2, timeoutMs: opts.timeoutMs ?? 900_000,
  });
  const run = collectGuestRun(vm, outDir);
  const agentLog = path.join(outDir, 'agent.log');
  if (run.results.completed !== true && fs.existsSync(agentLog)) console.error(`agent log (${agentLog}):\n${fs.readFileSync(agentLog, 'utf8').slice(-4000)}`);
  return run;
}
