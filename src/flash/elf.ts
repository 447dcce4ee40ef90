/**
 * The architectures berth ships an agent bundle for: `arm64` (aarch64), `arm` (32-bit ARM, hard-float:
 * Node's official armv7l build) and `armv6` (ARMv6 boards, the Pi Zero/Zero W and Pi 1: no official Node
 * runs there, so Debian armel's Node 18 with its own loader and libraries, src/flash/bundle-armv6.ts).
 */
export type BundleArch = 'arm64' | 'arm' | 'armv6';
export const BUNDLE_ARCHES: readonly BundleArch[] = ['arm64', 'arm', 'armv6'];

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

/**
 * The bundle architecture an ELF binary runs as, or undefined for anything else (x86 …). A soft-float
 * (armel) userland is Debian's port for ARMv5TE/ARMv6 boards: the armv6 bundle. An armhf userland says
 * nothing about the CPU (Raspberry Pi OS's 32-bit image is ARMv6 hard-float and boots a Zero W as well as
 * a Pi 3): it maps to `arm`, and the board, not the image, decides armv6 (flash --board).
 */
export function bundleArchOf(elf: ElfInfo): BundleArch | undefined {
  if (elf.machine === 0xb7 && elf.bits === 64) return 'arm64';
  if (elf.machine === 0x28 && elf.bits === 32) return elf.hardFloat ? 'arm' : 'armv6';
  return undefined;
}

export function describeElf(elf: ElfInfo): string {
  const names: Record<number, string> = { 0xb7: 'aarch64', 0x28: 'arm', 0x3e: 'x86-64', 0x03: 'i386', 0xf3: 'riscv' };
  const name = names[elf.machine] ?? `machine 0x${elf.machine.toString(16)}`;
  return `${elf.bits}-bit ${name}${elf.machine === 0x28 ? (elf.hardFloat ? ' (hard-float)' : ' (soft-float)') : ''}`;
}

/** What a dynamically linked ELF binary needs at load time: its interpreter (PT_INTERP) and DT_NEEDED libraries. */
export interface ElfDependencies {
  readonly interpreter?: string;
  readonly needed: readonly string[];
}

/** Reads `len` bytes at `offset` of the binary (a file handle in practice: node is ~100 MB, only a few KiB are read). */
export type ReadAt = (offset: number, len: number) => Promise<Buffer>;

/**
 * The interpreter and DT_NEEDED entries of a little-endian ELF executable, from its program headers and
 * dynamic segment (string table addresses mapped to file offsets through the PT_LOAD segments).
 * Empty for a static binary; undefined when it is not ELF.
 */
export async function elfDependencies(read: ReadAt): Promise<ElfDependencies | undefined> {
  const h = await read(0, 64);
  const elf = parseElfHeader(h);
  if (!elf) return undefined;
  const b64 = elf.bits === 64;
  const word = (b: Buffer, o: number): number => (b64 ? Number(b.readBigUInt64LE(o)) : b.readUInt32LE(o));
  const phoff = word(h, b64 ? 32 : 28);
  const phentsize = h.readUInt16LE(b64 ? 54 : 42);
  const phnum = h.readUInt16LE(b64 ? 56 : 44);
  const ph = await read(phoff, phentsize * phnum);
  const segs = Array.from({ length: phnum }, (_, i) => {
    const o = i * phentsize;
    return b64
      ? { type: ph.readUInt32LE(o), offset: word(ph, o + 8), vaddr: word(ph, o + 16), filesz: word(ph, o + 32) }
      : { type: ph.readUInt32LE(o), offset: ph.readUInt32LE(o + 4), vaddr: ph.readUInt32LE(o + 8), filesz: ph.readUInt32LE(o + 16) };
  });
  const cstr = (b: Buffer, o = 0): string => b.toString('latin1', o, b.indexOf(0, o) < 0 ? b.length : b.indexOf(0, o));
  const interp = segs.find((s) => s.type === 3); // PT_INTERP
  const interpreter = interp ? cstr(await read(interp.offset, interp.filesz)) : undefined;
  const dyn = segs.find((s) => s.type === 2); // PT_DYNAMIC
  if (!dyn) return { ...(interpreter !== undefined && { interpreter }), needed: [] };
  const d = await read(dyn.offset, dyn.filesz);
  const size = b64 ? 16 : 8;
  const entries: Array<[number, number]> = [];
  for (let o = 0; o + size <= d.length; o += size) {
    const tag = word(d, o);
    if (tag === 0) break; // DT_NULL
    entries.push([tag, word(d, o + size / 2)]);
  }
  const strtab = entries.find(([t]) => t === 5)?.[1]; // DT_STRTAB (an address)
  const strsz = entries.find(([t]) => t === 10)?.[1] ?? 0; // DT_STRSZ
  const load = segs.find((s) => s.type === 1 && strtab !== undefined && strtab >= s.vaddr && strtab < s.vaddr + s.filesz);
  if (strtab === undefined || !load) return { ...(interpreter !== undefined && { interpreter }), needed: [] };
  const strings = await read(strtab - load.vaddr + load.offset, strsz);
  const needed = entries.filter(([t]) => t === 1).map(([, off]) => cstr(strings, off)); // DT_NEEDED
  return { ...(interpreter !== undefined && { interpreter }), needed };
}
