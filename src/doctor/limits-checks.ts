import { readHostText } from '../host/read.js';
import { cmdlineFix } from './kernel-checks.js';
import type { Check } from './types.js';

/**
 * What berth's small-RAM policy needs beyond cgroup v2 itself: PSI for the pressure governor, a kernel
 * with the v2 freezer, a sane container budget, and no swap on the SD card behind the containers' backs.
 */

const MiB = 1024 * 1024;
const mib = (n: number): string => `${Math.round(n / MiB)} MiB`;

export const budgetCheck: Check = (ctx) => {
  const title = 'memory budget';
  const b = ctx.board;
  if (!b) return { id: 'budget', title, status: 'warn', detail: 'board not detected: no budget computed (see the board check)' };
  const reserve = b.reserve.osBytes + b.reserve.agentBytes;
  const detail = `containers get ${mib(b.containerBudgetBytes)} together (${mib(b.memTotalBytes)} RAM − ${mib(reserve)} reserved for the OS and agent), enforced as memory.max of the berth cgroup; a container without --memory gets memory.high ${mib(b.containerDefaults.memoryHighBytes)}, memory.max ${mib(b.containerDefaults.memoryMaxBytes)}`;
  if (b.containerBudgetBytes === 0) {
    return { id: 'budget', title, status: 'fail', detail: `the ${b.profile} profile reserves ${mib(reserve)}, more than the ${mib(b.memTotalBytes)} the kernel sees`, fix: 'lower "reserve" in a profile of your own (BERTH_PROFILES_DIR), or free RAM (e.g. gpu_mem=16 in config.txt on a headless Pi)' };
  }
  return { id: 'budget', title, status: 'ok', detail };
};

export const psiCheck: Check = (ctx) => {
  const title = 'memory pressure (PSI)';
  if (readHostText(ctx.host, '/proc/pressure/memory') !== undefined) {
    return { id: 'psi', title, status: 'ok', detail: 'PSI available: the agent freezes, then stops best-effort containers under memory pressure' };
  }
  const cmdline = readHostText(ctx.host, '/proc/cmdline') ?? '';
  return {
    id: 'psi', title, status: 'warn',
    detail: 'no /proc/pressure/memory: limits still hold, but the pressure governor is off and only the OOM killer sheds load',
    fix: /\bpsi=0\b/.test(cmdline) ? 'remove "psi=0" from the kernel command line, then reboot' : cmdlineFix(ctx, 'psi=1') + ' (kernels built with CONFIG_PSI_DEFAULT_DISABLED)',
  };
};

export const freezerCheck: Check = (ctx) => {
  const title = 'cgroup v2 freezer and OOM groups';
  const release = readHostText(ctx.host, '/proc/sys/kernel/osrelease')?.trim();
  const m = release ? /^(\d+)\.(\d+)/.exec(release) : null;
  if (!m) return { id: 'freezer', title, status: 'warn', detail: 'kernel release unknown (no /proc/sys/kernel/osrelease)' };
  const v = Number(m[1]) * 1000 + Number(m[2]);
  if (v >= 5002) return { id: 'freezer', title, status: 'ok', detail: `kernel ${release}: cgroup.freeze and memory.oom.group available` };
  return {
    id: 'freezer', title, status: 'warn',
    detail: `kernel ${release} predates the cgroup v2 freezer (5.2)${v < 4019 ? ' and memory.oom.group (4.19)' : ''}: the governor can only stop containers, not freeze them`,
    fix: 'upgrade the kernel (Raspberry Pi OS Bookworm ships 6.x)',
  };
};

export const swapCheck: Check = (ctx) => {
  const title = 'swap';
  const lines = (readHostText(ctx.host, '/proc/swaps') ?? '').split('\n').slice(1).filter((l) => l.trim() !== '');
  const onDisk = lines.map((l) => l.trim().split(/\s+/)).filter((f) => f[0] !== undefined && !f[0].startsWith('/dev/zram'));
  if (onDisk.length === 0) {
    return { id: 'swap', title, status: 'ok', detail: lines.length > 0 ? 'swap on zram only' : 'no swap: containers are held to their memory limits by reclaim and the OOM killer' };
  }
  const where = onDisk.map((f) => `${f[0]} (${Math.round(Number(f[2] ?? 0) / 1024)} MiB)`).join(', ');
  const flash = ctx.board?.storage.class === 'sd' || ctx.board?.storage.class === 'emmc';
  if (!flash) return { id: 'swap', title, status: 'ok', detail: `swap on ${where}; containers get none unless --memory-swap asks (memory.swap.max 0)` };
  return {
    id: 'swap', title, status: 'warn',
    detail: `swap on flash storage: ${where}. Containers get none (memory.swap.max 0), but the OS pages there, which wears the card and stalls the board under pressure`,
    fix: ctx.board?.kernelCmdline !== undefined
      ? 'sudo dphys-swapfile swapoff && sudo systemctl disable dphys-swapfile (or apt-get install zram-tools for compressed swap in RAM)'
      : `swapoff ${onDisk.map((f) => f[0]).join(' ')} and remove it from /etc/fstab (or use zram)`,
  };
};
