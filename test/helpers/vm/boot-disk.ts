import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDiskBootInitramfs } from './initramfs.js';
import { findVmKernel } from './kernel.js';
import { kernelBootArgs, startQemu } from './qemu.js';

/**
 * Boots a whole disk image (a flashed SD card) in the arm64 VM the way a board boots it: the kernel
 * command line from the card's cmdline.txt, the root partition it names, the card's own systemd as PID 1.
 * The only network is qemu's user-mode network with `restrict=on` (the guest reaches nothing outside),
 * plus one forward per service: a guest address:port spliced to a port on this machine's loopback.
 */

const PIPE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'tcp-pipe.mjs');

export interface DiskBootOptions {
  readonly disk: string;
  /** The kernel command line as the card's cmdline.txt has it; `console=` is pointed at the VM's serial port. */
  readonly cmdline: string;
  /** Writable directory for the console log and the initramfs. */
  readonly outDir: string;
  /** Guest `address:port` → host loopback port (e.g. the broker). The guest's own address is 10.0.2.15. */
  readonly forwards: ReadonlyArray<{ readonly guest: string; readonly hostPort: number }>;
  readonly memoryMiB?: number;
  /** Killed after this long whatever happens (a stuck boot must not hang the test run). */
  readonly timeoutMs: number;
}

export interface BootedDisk {
  readonly consoleLog: string;
  /** The console so far. */
  console(): string;
  /** Powers the VM off (SIGTERM to qemu: the guest gets no say, as when a board's power is pulled). */
  stop(): Promise<void>;
}

/**
 * Rewrites a Pi's cmdline.txt for the VM: the serial console is ttyAMA0 here, the HDMI console goes, and
 * instead of `quiet` the journal goes to the console too: the only witness of the agent's start-up.
 */
export function vmCmdline(cmdline: string): string {
  const args = cmdline.trim().split(/\s+/).filter((a) => !a.startsWith('console=') && a !== 'quiet');
  return [...args, 'console=ttyAMA0', 'systemd.journald.forward_to_console=1', 'panic=-1', 'mitigations=off'].join(' ');
}

export async function bootDisk(opts: DiskBootOptions): Promise<BootedDisk> {
  const kernel = findVmKernel('arm64');
  fs.mkdirSync(opts.outDir, { recursive: true });
  const initrd = path.join(opts.outDir, 'initrd-disk.gz');
  fs.writeFileSync(initrd, buildDiskBootInitramfs({ busybox: kernel.busybox, modulesDir: kernel.modulesDir }));
  const forwards = opts.forwards.map((f) => `,guestfwd=tcp:${f.guest}-cmd:${process.execPath} ${PIPE} 127.0.0.1 ${f.hostPort}`).join('');
  const args = [
    ...kernelBootArgs('arm64', { kernel, initrd, append: vmCmdline(opts.cmdline), memoryMiB: opts.memoryMiB ?? 1024, cpus: 2 }),
    '-drive', `file=${opts.disk},format=raw,if=virtio`,
    '-netdev', `user,id=net0,restrict=on,net=10.0.2.0/24${forwards}`, '-device', 'virtio-net-pci,netdev=net0',
  ];
  const consoleLog = path.join(opts.outDir, 'console.log');
  let text = '';
  const qemu = startQemu('arm64', args, consoleLog, opts.timeoutMs, (chunk) => void (text += chunk.toString()));
  return {
    consoleLog,
    console: () => text,
    async stop() {
      qemu.stop();
      await qemu.exited;
    },
  };
}
