import fs from 'node:fs';
import { BerthError } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import { readHostBytes } from '../host/read.js';

/** The architecture the running userland is built for: this decides which images can run natively. */
export interface Userland {
  /** OCI architecture name: arm64, arm, amd64, 386, riscv64 … */
  readonly arch: string;
  readonly bits: 32 | 64;
  /**
   * How it was found: the ELF header of /proc/self/exe; Node's own `process.arch` (only on the real host,
   * where Node is the userland); or the kernel's machine name, for a copied host tree without self/exe.
   */
  readonly source: 'elf' | 'node' | 'kernel';
}

const ELF_MACHINES: Record<number, string> = { 3: '386', 40: 'arm', 62: 'amd64', 183: 'arm64', 243: 'riscv64' };
const NODE_ARCHES: Record<string, string> = { arm64: 'arm64', arm: 'arm', x64: 'amd64', ia32: '386', riscv64: 'riscv64' };
const WIDE = ['arm64', 'amd64', 'riscv64'];

/**
 * Reads the userland width from the running executable's ELF header, not from uname: a Pi 4 on 32-bit
 * Raspberry Pi OS runs an aarch64 kernel under an armhf userland, and only arm images run there natively.
 *
 * Without a readable ELF header the answer depends on whose host this is. On the real host (`hostRoot`
 * `/`) Node itself is the userland, so `process.arch` is right. Under `BERTH_HOST_ROOT` (a copy of a
 * board's /proc and /sys) Node is this machine's and says nothing about the board; a plain copy has no
 * /proc/self/exe, so the kernel's machine name stands in (a 32-bit userland on a 64-bit kernel cannot be
 * told apart there: facts.ts says so in a note).
 */
export function detectUserland(host: HostPaths, kernel: KernelFacts): Userland {
  const fromElf = elfUserland(host);
  if (fromElf) return fromElf;
  if (host.hostRoot === '/') {
    const arch = NODE_ARCHES[process.arch] ?? process.arch;
    return { arch, bits: WIDE.includes(arch) ? 64 : 32, source: 'node' };
  }
  const arch = kernelUserlandArch(kernel);
  if (arch === undefined) {
    throw new BerthError('host', `cannot tell the userland of the host tree ${host.hostRoot}: it has no proc/self/exe, proc/sys/kernel/arch or CPU architecture in proc/cpuinfo`, {
      hint: 'copy the board\'s /proc/sys/kernel/arch (uname -m) into the tree, or the first bytes of a binary of its userland as proc/self/exe',
    });
  }
  return { arch, bits: WIDE.includes(arch) ? 64 : 32, source: 'kernel' };
}

function elfUserland(host: HostPaths): Userland | undefined {
  // In a copied tree, self/exe may be a symlink copied as such: its absolute target names a file of THIS
  // machine (`cp -r` of /proc/self/exe gives "/usr/bin/cp"), so following it would detect the wrong host.
  if (host.hostRoot !== '/' && isSymlink(host.resolve('/proc/self/exe'))) return undefined;
  const header = readHostBytes(host, '/proc/self/exe', 20);
  if (!header || header.length < 20 || header.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const bits = header[4] === 2 ? 64 : 32;
  const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
  const arch = ELF_MACHINES[machine];
  return arch !== undefined ? { arch, bits, source: 'elf' } : undefined;
}

function isSymlink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** What the kernel says about the machine, already read by facts.ts: the fallback for a copied tree. */
export interface KernelFacts {
  /** uname -m, from proc/sys/kernel/arch. */
  readonly kernelArch?: string | undefined;
  /** cpuinfo's "CPU architecture" (ARM only). */
  readonly cpuArchitecture?: string | undefined;
}

/** The kernel's machine name, else cpuinfo's CPU architecture, as an OCI architecture name. */
function kernelUserlandArch(kernel: KernelFacts): string | undefined {
  const machine = kernel.kernelArch?.toLowerCase();
  if (machine) {
    if (machine === 'aarch64' || machine === 'arm64') return 'arm64';
    if (machine.startsWith('arm')) return 'arm';
    if (machine === 'x86_64') return 'amd64';
    if (/^i[3-6]86$/.test(machine)) return '386';
    if (machine === 'riscv64') return 'riscv64';
  }
  const cpuArch = kernel.cpuArchitecture;
  if (cpuArch === undefined) return undefined;
  if (cpuArch === '8' || /aarch64/i.test(cpuArch)) return 'arm64';
  return /^[4-7]/.test(cpuArch) ? 'arm' : undefined;
}
