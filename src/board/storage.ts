import type { HostPaths } from '../host/paths.js';
import { parseMountinfo } from '../host/mountinfo.js';
import { readHostText } from '../host/read.js';

export const STORAGE_CLASSES = ['sd', 'emmc', 'nvme', 'disk'] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];

/** How much berth may write, per storage class. SD cards wear out fastest and lose power mid-write most often. */
export interface WriteBudget {
  /** Cap per container log file before rotation. */
  readonly logMaxBytes: number;
  /** Rotated log files kept per container (including the live one). */
  readonly logMaxFiles: number;
  /** Telemetry and event spools are flushed to disk at most this often. */
  readonly flushIntervalSeconds: number;
  /** Target ceiling for berth's own writes per day (logs, spool, state). */
  readonly writeBudgetBytesPerDay: number;
}

const MiB = 1024 * 1024;
export const WRITE_BUDGETS: Record<StorageClass, WriteBudget> = {
  sd: { logMaxBytes: 1 * MiB, logMaxFiles: 2, flushIntervalSeconds: 60, writeBudgetBytesPerDay: 64 * MiB },
  emmc: { logMaxBytes: 4 * MiB, logMaxFiles: 3, flushIntervalSeconds: 30, writeBudgetBytesPerDay: 256 * MiB },
  nvme: { logMaxBytes: 16 * MiB, logMaxFiles: 5, flushIntervalSeconds: 10, writeBudgetBytesPerDay: 2048 * MiB },
  disk: { logMaxBytes: 16 * MiB, logMaxFiles: 5, flushIntervalSeconds: 10, writeBudgetBytesPerDay: 2048 * MiB },
};

export interface RootDevice {
  /** Kernel name of the partition holding `/`, e.g. mmcblk0p2. */
  readonly device: string;
  /** The storage class the device reveals, when it does (mmc SD vs eMMC, NVMe). */
  readonly storageClass?: StorageClass;
}

/**
 * Finds the block device under `/` from mountinfo's major:minor, then asks sysfs what it is. Works for
 * `/dev/root` too, which mountinfo shows on Raspberry Pi OS when booted with root=PARTUUID=….
 */
export function detectRootDevice(host: HostPaths): RootDevice | undefined {
  const mountinfo = readHostText(host, '/proc/self/mountinfo');
  if (mountinfo === undefined) return undefined;
  // The last mount on / wins: it is the one processes see.
  const majMin = parseMountinfo(mountinfo).filter((m) => m.mountPoint === '/').at(-1)?.majMin;
  if (majMin === undefined) return undefined;
  const uevent = readHostText(host, `/sys/dev/block/${majMin}/uevent`);
  const name = uevent === undefined ? undefined : /^DEVNAME=(\S+)$/m.exec(uevent)?.[1];
  if (name === undefined) return undefined;
  if (/^nvme\d+n\d+/.test(name)) return { device: name, storageClass: 'nvme' };
  const mmc = /^(mmcblk\d+)/.exec(name);
  if (mmc) {
    const type = readHostText(host, `/sys/block/${mmc[1]}/device/type`)?.trim();
    if (type === 'SD') return { device: name, storageClass: 'sd' };
    if (type === 'MMC') return { device: name, storageClass: 'emmc' };
  }
  return { device: name };
}
