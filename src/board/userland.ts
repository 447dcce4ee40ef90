import type { HostPaths } from '../host/paths.js';
import { readHostBytes } from '../host/read.js';

/** The architecture the running userland is built for: this decides which images can run natively. */
export interface Userland {
  /** OCI architecture name: arm64, arm, amd64, 386, riscv64 … */
  readonly arch: string;
  readonly bits: 32 | 64;
  /** How it was found: the ELF header of /proc/self/exe, or Node's own `process.arch`. */
  readonly source: 'elf' | 'node';
}

const ELF_MACHINES: Record<number, string> = { 3: '386', 40: 'arm', 62: 'amd64', 183: 'arm64', 243: 'riscv64' };
const NODE_ARCHES: Record<string, string> = { arm64: 'arm64', arm: 'arm', x64: 'amd64', ia32: '386', riscv64: 'riscv64' };

/**
 * Reads the userland width from the running executable's ELF header, not from uname: a Pi 4 on 32-bit
 * Raspberry Pi OS runs an aarch64 kernel under an armhf userland, and only arm images run there natively.
 */
export function detectUserland(host: HostPaths): Userland {
  const header = readHostBytes(host, '/proc/self/exe', 20);
  if (header && header.length >= 20 && header.readUInt32BE(0) === 0x7f454c46) {
    const bits = header[4] === 2 ? 64 : 32;
    const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
    const arch = ELF_MACHINES[machine];
    if (arch !== undefined) return { arch, bits, source: 'elf' };
  }
  const arch = NODE_ARCHES[process.arch] ?? process.arch;
  return { arch, bits: ['arm64', 'amd64', 'riscv64'].includes(arch) ? 64 : 32, source: 'node' };
}
