import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { vmCmdline, type BootedDisk } from './boot-disk.js';
import { buildDiskBootInitramfs } from './initramfs.js';
import { findVmKernel } from './kernel.js';
import { kernelBootArgs, startQemu } from './qemu.js';

/**
 * Boots a flashed SD card as a Raspberry Pi Zero boots it, under qemu's raspi0 machine: the BCM2835 SoC
 * with an ARM1176 core (`-cpu arm1176`: ARMv6, so an ARMv7 instruction in the agent or its Node is an
 * illegal-instruction fault, as on the board), 512 MiB, the card on the SoC's SD host, and Debian's kernel
 * for the Pi Zero/1 (linux-image-rpi, armel; scripts/setup.sh puts it in .cache/vm/armel) with the Zero's
 * device tree from that package. The network is qemu's usb-net on the SoC's USB port (the Zero's OTG
 * port, with a USB Ethernet adapter), user-mode with `restrict=on` and one forward per service, as in
 * boot-disk.ts.
 */

const PIPE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tcp-pipe.mjs');

/** What the initramfs loads from our kernel package: the card's ext4, the USB NIC's driver, berth's overlays. */
export const ZERO_BOOT_MODULES = ['crc32c_generic', 'ext4', 'cdc_ether', 'overlay'];

/**
 * The Zero's device tree from Debian's package, less the ASB region of the power-management block: qemu's
 * raspi0 does not emulate the ASB, and the kernel's bcm2835-power driver oopses at boot on reading it.
 * Without the region the PM driver registers no power domains (the firmware's, through the mailbox qemu
 * does emulate, still power the USB controller); the watchdog, which powers the SoC off, stays.
 */
export function zeroDeviceTree(dtbDir: string, outDir: string): string {
  const dts = execFileSync('dtc', ['-q', '-I', 'dtb', '-O', 'dts', path.join(dtbDir, 'bcm2835-rpi-zero.dtb')]).toString();
  const reg = 'reg = <0x7e100000 0x114 0x7e00a000 0x24>;';
  const names = 'reg-names = "pm\\0asb";';
  if (!dts.includes(reg) || !dts.includes(names)) throw new Error(`the Zero's device tree in ${dtbDir} no longer has the PM block's ASB region where expected`);
  const out = path.join(outDir, 'bcm2835-rpi-zero-qemu.dtb');
  execFileSync('dtc', ['-q', '-I', 'dts', '-O', 'dtb', '-o', out, '-'], { input: dts.replace(reg, 'reg = <0x7e100000 0x114>;').replace(names, 'reg-names = "pm";') });
  return out;
}

export interface ZeroBootOptions {
  /** The flashed card; grown in place to a power of two (qemu's SD card wants one; the partitions are untouched). */
  readonly disk: string;
  readonly cmdline: string;
  readonly outDir: string;
  readonly forwards: ReadonlyArray<{ readonly guest: string; readonly hostPort: number }>;
  readonly timeoutMs: number;
}

export async function bootZeroCard(opts: ZeroBootOptions): Promise<BootedDisk> {
  const kernel = findVmKernel('armel');
  fs.mkdirSync(opts.outDir, { recursive: true });
  const size = fs.statSync(opts.disk).size;
  fs.truncateSync(opts.disk, 2 ** Math.ceil(Math.log2(size)));
  const initrd = path.join(opts.outDir, 'initrd-zero.gz');
  fs.writeFileSync(initrd, buildDiskBootInitramfs({ busybox: kernel.busybox, modulesDir: kernel.modulesDir, disk: '/dev/mmcblk0', modules: ZERO_BOOT_MODULES }));
  const dtb = zeroDeviceTree(path.join(path.dirname(kernel.modulesDir), '..', '..', 'usr', 'lib', `linux-image-${kernel.version}`), opts.outDir);
  const forwards = opts.forwards.map((f) => `,guestfwd=tcp:${f.guest}-cmd:${process.execPath} ${PIPE} 127.0.0.1 ${f.hostPort}`).join('');
  const args = [
    ...kernelBootArgs('armv6', { kernel, initrd, append: vmCmdline(opts.cmdline), memoryMiB: 512, cpus: 1 }), '-dtb', dtb,
    '-drive', `file=${opts.disk},format=raw,if=sd`,
    '-netdev', `user,id=net0,restrict=on,net=10.0.2.0/24${forwards}`, '-device', 'usb-net,netdev=net0',
  ];
  const consoleLog = path.join(opts.outDir, 'console.log');
  let text = '';
  const qemu = startQemu('armv6', args, consoleLog, opts.timeoutMs, (chunk) => void (text += chunk.toString()));
  return {
    consoleLog,
    console: () => text,
    async stop() {
      qemu.stop();
      await qemu.exited;
    },
  };
}
