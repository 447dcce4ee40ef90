// A Raspberry Pi OS–shaped disk image built from scratch with the real tools: an MBR (sfdisk) with a
// FAT32 "bootfs" at sector 16384 (mkfs.vfat, files put in with mcopy) and an ext4 "rootfs" made with
// mkfs.ext4 -d from a small tree (/etc, /usr/bin with Debian's static busybox for the arch,
// /lib/systemd/system). Nothing needs root or a loop device.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { busyboxBinary, type TestArch } from './images/build.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const BOOT_START = 16384;
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' };

export interface PiImageOptions {
  readonly arch?: TestArch;
  readonly rootMiB?: number;
  /** Leave out the root partition (a "missing partition" image). */
  readonly noRoot?: boolean;
  /** Files on the boot partition (default: cmdline.txt and config.txt as Raspberry Pi OS ships them). */
  readonly bootFiles?: Record<string, string>;
  /** MiB of this machine's /usr (a tar stream, cut) in /usr/share/filler: a real system's bulk and compressibility (benchmarks). */
  readonly fillerMiB?: number;
  /**
   * A bootable system to start the root partition from (scripts/setup.sh assembles .cache/vm/pios-*: a
   * Debian systemd userland) instead of the small busybox tree. Copied, never modified.
   */
  readonly baseTree?: string;
  /** Shared libraries to leave out of the small tree (an image Node cannot run on). */
  readonly omitLibraries?: readonly string[];
  /** Last changes to the root tree before mkfs.ext4 (e.g. the test image's network unit). */
  readonly customize?: (tree: string) => Promise<void>;
}

export const PI_CMDLINE = 'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n';

/** Builds the image at `file` (its directory is used for scratch files too). */
export async function buildPiImage(file: string, opts: PiImageOptions = {}): Promise<string> {
  const work = await fs.mkdtemp(`${file}.work-`);
  try {
    const tree = path.join(work, 'root');
    if (opts.baseTree) await run('cp', ['-a', `${opts.baseTree}/.`, tree]);
    for (const d of ['etc/systemd/system', 'usr/bin', 'lib/systemd/system', 'opt', 'usr/local/bin']) await fs.mkdir(path.join(tree, d), { recursive: true });
    await fs.writeFile(path.join(tree, 'etc/hostname'), 'raspberrypi\n');
    await fs.writeFile(path.join(tree, 'etc/hosts'), '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n\n127.0.1.1\t\traspberrypi\n');
    await fs.writeFile(path.join(tree, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n');
    if (!opts.baseTree) {
      await fs.writeFile(path.join(tree, 'usr/bin/busybox'), await busyboxBinary(opts.arch ?? 'arm64'), { mode: 0o755 });
      await fs.writeFile(path.join(tree, 'usr/bin/lsb_release'), '#!/bin/sh\necho Debian\n', { mode: 0o755 });
      await fs.symlink('busybox', path.join(tree, 'usr/bin/sh'));
      await addLibraries(tree, opts.arch ?? 'arm64', opts.omitLibraries ?? []);
    }
    await fs.writeFile(path.join(tree, 'lib/systemd/system/ssh.service'), '[Unit]\nDescription=OpenBSD Secure Shell server\n');
    if (opts.fillerMiB) {
      await fs.mkdir(path.join(tree, 'usr/share'), { recursive: true });
      await run('sh', ['-c', `tar -cf - /usr/lib /usr/share /usr/bin 2>/dev/null | head -c ${opts.fillerMiB * MiB} > '${path.join(tree, 'usr/share/filler')}'`]);
    }
    await opts.customize?.(tree);
    const rootMiB = opts.rootMiB ?? 320;
    const rootImg = path.join(work, 'root.img');
    await run('mkfs.ext4', ['-q', '-F', '-L', 'rootfs', '-d', tree, rootImg, `${rootMiB}M`]);

    const bootMiB = 64;
    const bootImg = path.join(work, 'boot.img');
    await run('mkfs.vfat', ['-F', '32', '-n', 'BOOTFS', '-C', bootImg, String(bootMiB * 1024)]);
    const bootFiles = opts.bootFiles ?? { 'cmdline.txt': PI_CMDLINE, 'config.txt': '# For more options see http://rptl.io/configtxt\ndtparam=audio=on\narm_64bit=1\n' };
    for (const [name, text] of Object.entries(bootFiles)) {
      const host = path.join(work, name);
      await fs.writeFile(host, text);
      await run('mcopy', ['-i', bootImg, host, `::/${name}`], { env: MTOOLS_ENV });
    }

    const bootSectors = (bootMiB * MiB) / 512;
    const rootStart = BOOT_START + bootSectors;
    const total = rootStart * 512 + (opts.noRoot ? 0 : rootMiB * MiB);
    const fh = await fs.open(file, 'w');
    await fh.truncate(total);
    await fh.close();
    const table = `label: dos\nlabel-id: 0x4e639091\nstart=${BOOT_START}, size=${bootSectors}, type=c\n${opts.noRoot ? '' : `start=${rootStart}, type=83\n`}`;
    await new Promise<void>((resolve, reject) => {
      const child = execFile('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', file], (err) => (err ? reject(err) : resolve()));
      child.stdin!.end(table);
    });
    await place(bootImg, file, BOOT_START * 512);
    if (!opts.noRoot) await place(rootImg, file, rootStart * 512);
    return file;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Debian's multiarch triple per test arch, where the cross toolchains keep the target's libc and friends. */
const TRIPLES: Partial<Record<TestArch, string>> = { arm64: 'aarch64-linux-gnu', armhf: 'arm-linux-gnueabihf' };
/** What the official Node builds link (berth flash checks the image has them): real files from the cross toolchain's target libraries. */
const NODE_LIBRARIES = ['libc.so.6', 'libdl.so.2', 'libm.so.6', 'libpthread.so.0', 'libgcc_s.so.1', 'libstdc++.so.6', 'libatomic.so.1'];

async function addLibraries(tree: string, arch: TestArch, omit: readonly string[]): Promise<void> {
  const triple = TRIPLES[arch];
  if (triple === undefined) return;
  const from = `/usr/${triple}/lib`;
  const libDir = path.join(tree, 'usr/lib', triple);
  await fs.mkdir(libDir, { recursive: true });
  await fs.mkdir(path.join(tree, 'lib'), { recursive: true });
  for (const lib of NODE_LIBRARIES.filter((l) => !omit.includes(l))) await fs.copyFile(path.join(from, lib), path.join(libDir, lib));
  const loader = (await fs.readdir(from)).find((f) => f.startsWith('ld-linux'));
  if (loader) await fs.copyFile(path.join(from, loader), path.join(tree, 'lib', loader));
}

/** Copies a partition image into the disk image at an offset (dd conv=notrunc). */
async function place(part: string, disk: string, offset: number): Promise<void> {
  await run('dd', [`if=${part}`, `of=${disk}`, 'bs=1M', `seek=${offset}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
}
