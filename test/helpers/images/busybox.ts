// Debian's busybox-static per architecture, and the layers the test images are made of. The .debs
// are fetched by scripts/setup.sh (apt-get download, never installed); here they are only unpacked,
// once, into .cache/test-images/bin/<arch>/busybox, so later runs need neither apt nor the network.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tarOf, type Platform, type TarEntrySpec } from './oci.js';

export type TestArch = 'amd64' | 'arm64' | 'armhf' | 'armel';
export const TEST_ARCHES: readonly TestArch[] = ['amd64', 'arm64', 'armhf', 'armel'];

/** OCI platform per Debian architecture: armhf is ARMv7 hard-float, armel runs on ARMv6 (Pi 1/Zero). */
export const PLATFORMS: Record<TestArch, Platform> = {
  amd64: { os: 'linux', architecture: 'amd64' },
  arm64: { os: 'linux', architecture: 'arm64' },
  armhf: { os: 'linux', architecture: 'arm', variant: 'v7' },
  armel: { os: 'linux', architecture: 'arm', variant: 'v6' },
};

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const CACHE_DIR = join(REPO, '.cache/test-images');
const DEB_DIR = join(CACHE_DIR, 'debs');

export interface ElfInfo {
  bits: 32 | 64;
  machine: number;
  /** ARM only: EABI float ABI from e_flags (0x400 hard, 0x200 soft). */
  float?: 'hard' | 'soft';
}

const EM = { amd64: 62, arm64: 183, armhf: 40, armel: 40 } as const; // EM_X86_64, EM_AARCH64, EM_ARM

/** Reads the ELF identification and e_machine (little-endian only, which all four arches are). */
export function elfInfo(bin: Buffer): ElfInfo {
  if (bin.length < 52 || bin.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (bin[5] !== 1) throw new Error('not a little-endian ELF file');
  const bits = bin[4] === 2 ? 64 : 32;
  const machine = bin.readUInt16LE(18);
  if (machine !== 40) return { bits, machine };
  const flags = bin.readUInt32LE(36);
  return { bits, machine, float: flags & 0x400 ? 'hard' : 'soft' };
}

function checkElf(arch: TestArch, bin: Buffer): void {
  const elf = elfInfo(bin);
  const bits = arch === 'amd64' || arch === 'arm64' ? 64 : 32;
  const float = arch === 'armhf' ? 'hard' : arch === 'armel' ? 'soft' : undefined;
  if (elf.machine !== EM[arch] || elf.bits !== bits || elf.float !== float) {
    throw new Error(`busybox for ${arch} is ELF${elf.bits} machine ${elf.machine} float ${elf.float}, expected ELF${bits} machine ${EM[arch]}`);
  }
}

const run = promisify(execFile);
const memo = new Map<TestArch, Promise<Buffer>>();

/** The static busybox binary for `arch`, checked to be an ELF for that architecture. */
export function busyboxBinary(arch: TestArch): Promise<Buffer> {
  let p = memo.get(arch);
  if (!p) {
    p = loadBusybox(arch);
    memo.set(arch, p);
    p.catch(() => memo.delete(arch));
  }
  return p;
}

/** Path of the cached, extracted binary (for tests that execute it). */
export async function busyboxPath(arch: TestArch): Promise<string> {
  await busyboxBinary(arch);
  return join(CACHE_DIR, 'bin', arch, 'busybox');
}

async function loadBusybox(arch: TestArch): Promise<Buffer> {
  const dest = join(CACHE_DIR, 'bin', arch, 'busybox');
  if (!existsSync(dest)) {
    const debs = existsSync(DEB_DIR) ? (await readdir(DEB_DIR)).filter((f) => f.startsWith('busybox-static_') && f.endsWith(`_${arch}.deb`)) : [];
    const deb = debs.sort().at(-1);
    if (!deb) throw new Error(`no busybox-static .deb for ${arch} in ${DEB_DIR}: run \`bash scripts/setup.sh\` (as root) to download it`);
    await mkdir(join(CACHE_DIR, 'bin', arch), { recursive: true });
    // Unpack beside the destination and rename: concurrent test files never see half a binary.
    const tmp = await mkdtemp(join(CACHE_DIR, 'bin', arch, '.x-'));
    try {
      await run('dpkg-deb', ['-x', join(DEB_DIR, deb), tmp]);
      checkElf(arch, await readFile(join(tmp, 'bin/busybox')));
      await rename(join(tmp, 'bin/busybox'), dest);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  const bin = await readFile(dest);
  checkElf(arch, bin);
  return bin;
}

/** The applets linked to busybox in every image. */
export const APPLETS = ['cat', 'echo', 'false', 'ls', 'sh', 'sleep', 'true'] as const;

const byName = (a: TarEntrySpec, b: TarEntrySpec): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Root skeleton, identical for all platforms so multi-arch images share this layer. */
export function baseEntries(): TarEntrySpec[] {
  const dir = (name: string, mode = 0o755): TarEntrySpec => ({ name, type: 'directory', mode });
  return [
    dir('dev/'),
    dir('etc/'),
    { name: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\n' },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
    dir('proc/'),
    dir('root/', 0o700),
    dir('sys/'),
    dir('tmp/', 0o1777),
  ];
}

/** bin/busybox + applet symlinks + etc/berth-platform ("linux/arm/v7") for one architecture. */
export async function busyboxEntries(arch: TestArch): Promise<TarEntrySpec[]> {
  const p = PLATFORMS[arch];
  return [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', content: await busyboxBinary(arch), mode: 0o755 },
    ...APPLETS.map((a): TarEntrySpec => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox', mode: 0o777 })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/berth-platform', content: `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}\n` },
  ];
}

/** Sorted, de-duplicated (first wins) tar of entries: same input, same bytes. */
export function sortedTar(entries: TarEntrySpec[]): Promise<Buffer> {
  const seen = new Set<string>();
  return tarOf(entries.filter((e) => !seen.has(e.name) && seen.add(e.name)).sort(byName));
}

/**
 * One file of `mb` MiB from a seeded xorshift128 PRNG: incompressible (gzip gains nothing), yet the
 * same bytes every run, so a benchmark layer has a stable digest.
 */
export function pseudoRandomBytes(bytes: number, seed = 0x5eed): Buffer {
  const buf = Buffer.alloc(bytes);
  const words = new Uint32Array(buf.buffer, buf.byteOffset, Math.floor(bytes / 4));
  let x = seed >>> 0 || 1, y = 362436069, z = 521288629, w = 88675123;
  for (let i = 0; i < words.length; i++) {
    const t = x ^ (x << 11);
    x = y; y = z; z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    words[i] = w;
  }
  return buf;
}

export function bigLayerEntries(mb: number): TarEntrySpec[] {
  return [
    { name: 'big/', type: 'directory' },
    { name: 'big/random.bin', content: pseudoRandomBytes(Math.round(mb * 1024 * 1024)) },
  ];
}
