import fs from 'node:fs';
import { readHostText } from '../host/read.js';
import type { Check, DoctorContext } from './types.js';

const NEEDED_CONTROLLERS = ['memory', 'cpu', 'pids', 'io'];

/** Where and how to add kernel arguments on this board, as one sentence. */
export function cmdlineFix(ctx: DoctorContext, args: string): string {
  const k = ctx.board?.kernelCmdline;
  if (!k) return `add "${args}" to the kernel command line in your bootloader configuration, then reboot`;
  const file = k.files.find((f) => fs.existsSync(ctx.host.resolve(f))) ?? k.files[0]!;
  return `add "${args}" to ${file} (${k.edit}), then reboot`;
}

export const cgroupCheck: Check = (ctx) => {
  const layout = ctx.layout;
  const title = 'cgroup v2 (unified)';
  const v1 = layout.v1.flatMap((h) => h.controllers).join(', ');
  switch (layout.mode) {
    case 'unified':
      return { id: 'cgroup', title, status: 'ok', detail: `cgroup v2 unified at ${layout.v2MountPoint}` };
    case 'hybrid':
      return {
        id: 'cgroup', title, status: 'fail',
        detail:
          `hybrid cgroup layout: cgroup v1 controllers (${v1}) are mounted beside cgroup v2 at ${layout.v2MountPoint}, ` +
          `which holds ${layout.v2Controllers.length > 0 ? `only ${layout.v2Controllers.join(', ')}` : 'no controllers'}. ` +
          'Containers still run, but berth cannot enforce memory, CPU or pids limits here (crun refuses hybrid hosts; limits are not applied).',
        fix: cmdlineFix(ctx, 'systemd.unified_cgroup_hierarchy=1') + ' (Raspberry Pi OS Bookworm and Debian 11+ boot unified by default)',
      };
    case 'legacy':
      return {
        id: 'cgroup', title, status: 'fail',
        detail: `only cgroup v1 is mounted (${v1}); berth enforces limits through cgroup v2 and cannot here`,
        fix: cmdlineFix(ctx, 'systemd.unified_cgroup_hierarchy=1'),
      };
    default:
      return {
        id: 'cgroup', title, status: 'fail',
        detail: 'no cgroup filesystem is mounted',
        fix: 'mount cgroup v2: mount -t cgroup2 none /sys/fs/cgroup (or boot with systemd, which does it)',
      };
  }
};

export const controllersCheck: Check = (ctx) => {
  const layout = ctx.layout;
  const title = 'cgroup v2 controllers';
  const missing = NEEDED_CONTROLLERS.filter((c) => !layout.v2Controllers.includes(c));
  if (layout.mode === 'none' || layout.mode === 'legacy') {
    return { id: 'controllers', title, status: 'fail', detail: 'no cgroup v2 hierarchy, so no v2 controllers', fix: 'see the cgroup check above' };
  }
  if (missing.length === 0) return { id: 'controllers', title, status: 'ok', detail: `${NEEDED_CONTROLLERS.join(', ')} available` };
  const have = layout.v2Controllers.length > 0 ? layout.v2Controllers.join(', ') : 'none';
  const boundToV1 = missing.filter((c) => layout.v1.some((h) => h.controllers.includes(c === 'io' ? 'blkio' : c)));
  const cmdline = readHostText(ctx.host, '/proc/cmdline') ?? '';
  let fix: string;
  if (boundToV1.length > 0) {
    fix = `${boundToV1.join(', ')} ${boundToV1.length === 1 ? 'is' : 'are'} bound to cgroup v1; switching to the unified layout frees them (see the cgroup check)`;
  } else if (missing.includes('memory') && (ctx.board?.kernelCmdline !== undefined || /cgroup_disable=memory/.test(cmdline))) {
    // The Raspberry Pi kernel disables the memory controller unless told otherwise.
    fix = cmdlineFix(ctx, 'cgroup_enable=memory');
  } else {
    fix = `enable ${missing.join(', ')} in the kernel (CONFIG_MEMCG, CONFIG_CGROUP_SCHED, CONFIG_CGROUP_PIDS, CONFIG_BLK_CGROUP) and check /proc/cmdline for cgroup_disable=`;
  }
  return { id: 'controllers', title, status: 'fail', detail: `missing ${missing.join(', ')} (cgroup v2 root has: ${have})`, fix };
};

export const overlayCheck: Check = (ctx) => {
  const title = 'overlayfs';
  const filesystems = readHostText(ctx.host, '/proc/filesystems') ?? '';
  if (/\boverlay$/m.test(filesystems)) return { id: 'overlayfs', title, status: 'ok', detail: 'overlay filesystem available' };
  const release = readHostText(ctx.host, '/proc/sys/kernel/osrelease')?.trim();
  const asModule = release !== undefined && fs.existsSync(ctx.host.resolve(`/lib/modules/${release}/kernel/fs/overlayfs`));
  return {
    id: 'overlayfs', title, status: 'warn',
    detail: 'overlayfs is not available: image layers are copied into each container instead of stacked (more disk, slower starts)',
    fix: asModule ? 'modprobe overlay, and add "overlay" to /etc/modules to load it at boot' : 'use a kernel with CONFIG_OVERLAY_FS',
  };
};

export const namespacesCheck: Check = (ctx) => {
  const title = 'namespaces';
  const needed = ['mnt', 'pid', 'net', 'ipc', 'uts'];
  const missing = needed.filter((ns) => !fs.existsSync(ctx.host.resolve(`/proc/self/ns/${ns}`)));
  if (missing.length === 0) return { id: 'namespaces', title, status: 'ok', detail: `${needed.join(', ')} namespaces available` };
  return { id: 'namespaces', title, status: 'fail', detail: `kernel lacks ${missing.join(', ')} namespaces`, fix: 'use a kernel with CONFIG_NAMESPACES and the missing namespace options' };
};

const BINFMT: Record<string, string> = { arm64: 'qemu-aarch64', arm: 'qemu-arm' };

/** Foreign-platform emulation: needed only to run images this board cannot run natively. */
export const binfmtCheck: Check = (ctx) => {
  const title = 'binfmt/QEMU (foreign platforms)';
  const native = new Set((ctx.board?.platforms ?? []).map((p) => p.split('/')[1]));
  const wanted = Object.keys(BINFMT).filter((arch) => !native.has(arch));
  if (wanted.length === 0) return { id: 'binfmt', title, status: 'ok', detail: 'not needed: ARM images run natively here' };
  const dir = '/proc/sys/fs/binfmt_misc';
  if (readHostText(ctx.host, `${dir}/status`) === undefined) {
    return {
      id: 'binfmt', title, status: 'warn',
      detail: `binfmt_misc is not mounted: ${wanted.join(', ')} images cannot run on this host`,
      fix: 'mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc, then apt-get install qemu-user-static',
    };
  }
  const problems: string[] = [];
  for (const arch of wanted) {
    const entry = readHostText(ctx.host, `${dir}/${BINFMT[arch]}`);
    if (entry === undefined) problems.push(`${arch}: no ${BINFMT[arch]} handler`);
    else if (!/^enabled$/m.test(entry)) problems.push(`${arch}: ${BINFMT[arch]} handler disabled`);
    // Without F the interpreter is looked up inside the container's root, where it does not exist.
    else if (!/^flags:.*F/m.test(entry)) problems.push(`${arch}: ${BINFMT[arch]} lacks the F (fix-binary) flag`);
  }
  if (problems.length === 0) return { id: 'binfmt', title, status: 'ok', detail: `${wanted.join(', ')} images run under QEMU user emulation` };
  return {
    id: 'binfmt', title, status: 'warn',
    detail: `foreign images will not run: ${problems.join('; ')}`,
    fix: 'apt-get install qemu-user-static (Debian registers the handlers with the F flag)',
  };
};

/** Raspberry Pi firmware reports under-voltage and throttling; a weak supply corrupts SD cards. */
export const powerCheck: Check = (ctx) => {
  const title = 'power and throttling';
  const raw = readHostText(ctx.host, '/sys/devices/platform/soc/soc:firmware/get_throttled')?.trim();
  if (raw === undefined) return { id: 'power', title, status: 'ok', detail: 'no firmware throttling report on this board' };
  const bits = parseInt(raw, 16);
  if (Number.isNaN(bits)) return { id: 'power', title, status: 'warn', detail: `unreadable get_throttled value "${raw}"` };
  const now = bits & 0xf;
  const since = (bits >> 16) & 0xf;
  if (now === 0 && since === 0) return { id: 'power', title, status: 'ok', detail: 'no under-voltage or throttling since boot' };
  const names = ['under-voltage', 'frequency capped', 'throttled', 'soft temperature limit'];
  const list = (b: number): string => names.filter((_, i) => (b & (1 << i)) !== 0).join(', ');
  const detail = now !== 0 ? `now: ${list(now)}` : `since boot: ${list(since)}`;
  const fix = (now | since) & 1 ? 'use the official power supply (5.1 V); under-voltage corrupts SD cards' : 'improve cooling (heatsink or fan)';
  return { id: 'power', title, status: 'warn', detail, fix };
};
