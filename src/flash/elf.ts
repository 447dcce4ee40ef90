/**
 * The architectures berth ships an agent bundle for, by Node's names: `arm64` (aarch64) and `arm`
 * (32-bit ARM, hard-float: Node's official armv7l build).
 */
export type BundleArch = 'arm64' | 'arm';
export const BUNDLE_ARCHES: readonly BundleArch[] = ['arm64', 'arm'];

export interface ElfInfo {
  readonly bits: 32 | 64;
  /** e_machine: 0xb7 aarch64, 0x28 arm, 0x3e x86-64 … */
  readonly machine: number;
  /** For 32-bit ARM: EF_ARM_ABI_FLOAT_HARD in e_flags (armhf rather than armel). */
  readonly hardFloat: boolean;
}

/** Reads an ELF header (the first 52+ bytes of a file); undefined when it is not ELF. Little-endian only. */
export function parseElfHeader(head: Buffer): ElfInfo | undefined {
  if (head.length < 52 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const cls = head[4];
  if ((cls !== 1 && cls !== 2) || head[5] !== 1) return undefined;
  const machine = head.readUInt16LE(18);
  const flags = cls === 1 ? head.readUInt32LE(36) : head.length >= 64 ? head.readUInt32LE(48) : 0;
  return { bits: cls === 2 ? 64 : 32, machine, hardFloat: (flags & 0x400) !== 0 };
}

/** The bundle architecture an ELF binary runs as, or undefined for anything else (x86, armel …). */
export function bundleArchOf(elf: ElfInfo): BundleArch | undefined {
  if (elf.machine === 0xb7 && elf.bits === 64) return 'arm64';
  if (elf.machine === 0x28 && elf.bits === 32 && elf.hardFloat) return 'arm';
  return undefined;
}

export function describeElf(elf: ElfInfo): string {
  const names: Record<number, string> = { 0xb7: 'aarch64', 0x28: 'arm', 0x3e: 'x86-64', 0x03: 'i386', 0xf3: 'riscv' };
  const name = names[elf.machine] ?? `machine 0x${elf.machine.toString(16)}`;
  return `${elf.bits}-bit ${name}${elf.machine === 0x28 ? (elf.hardFloat ? ' (hard-float)' : ' (soft-float)') : ''}`;
}
