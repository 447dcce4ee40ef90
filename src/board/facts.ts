import { BerthError } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import { readDeviceTreeStrings, readHostText } from '../host/read.js';
import { countCpuList, parseCpuinfo, parseMemTotal, type CpuInfo } from './cpuinfo.js';
import type { CpuIsa } from './profiles.js';
import { decodeRevision, type RevisionInfo } from './revision.js';
import { detectRootDevice, type RootDevice } from './storage.js';
import { detectUserland, type Userland } from './userland.js';

/** Everything berth reads off the host to recognise the board. Pure data: selection happens elsewhere. */
export interface BoardFacts {
  readonly model?: string;
  readonly modelSource?: 'device-tree' | 'cpuinfo' | 'dmi';
  readonly compatible: readonly string[];
  readonly cpuinfo: CpuInfo;
  readonly isRaspberryPi: boolean;
  /** Decoded revision code; only on Raspberry Pi boards, where the code means something. */
  readonly revision?: RevisionInfo;
  readonly memTotalBytes: number;
  readonly cpus: number;
  /** Kernel machine name (uname -m), which may be wider than the userland. */
  readonly kernelArch?: string;
  readonly userland: Userland;
  readonly cpuIsa?: CpuIsa;
  readonly rootDevice?: RootDevice;
  /** Things worth telling the user that are not errors. */
  readonly notes: readonly string[];
}

const PI_SOCS = /^BCM(2708|2709|2710|2835|2836|2837|2711|2712)\b/;

export function readBoardFacts(host: HostPaths): BoardFacts {
  const notes: string[] = [];
  const cpuinfoText = readHostText(host, '/proc/cpuinfo');
  if (cpuinfoText === undefined) throw new BerthError('host', `cannot detect the board: ${host.resolve('/proc/cpuinfo')} does not exist`);
  const cpuinfo = parseCpuinfo(cpuinfoText);
  const meminfo = readHostText(host, '/proc/meminfo');
  if (meminfo === undefined) throw new BerthError('host', `cannot detect the board: ${host.resolve('/proc/meminfo')} does not exist`);
  const memTotalBytes = parseMemTotal(meminfo);

  const dtModel = readDeviceTreeStrings(host, '/proc/device-tree/model')?.[0];
  const compatible = readDeviceTreeStrings(host, '/proc/device-tree/compatible') ?? [];
  const dmiModel = dmiProduct(host);
  const [model, modelSource] =
    dtModel !== undefined ? [dtModel, 'device-tree' as const]
    : cpuinfo.model !== undefined ? [cpuinfo.model, 'cpuinfo' as const]
    : dmiModel !== undefined ? [dmiModel, 'dmi' as const]
    : [undefined, undefined];

  const isRaspberryPi =
    compatible.some((c) => c.startsWith('raspberrypi,')) || /^Raspberry Pi\b/.test(model ?? '') || PI_SOCS.test(cpuinfo.hardware ?? '');
  // Validate the code everywhere (a garbage line is a garbage file), decode it only where it is a Pi code.
  const decoded = cpuinfo.revision === undefined ? undefined : decodeRevision(cpuinfo.revision);
  const revision = isRaspberryPi ? decoded : undefined;
  if (isRaspberryPi && cpuinfo.revision !== undefined && decoded === undefined) {
    notes.push(`unknown Raspberry Pi revision code ${cpuinfo.revision}`);
  }

  const present = readHostText(host, '/sys/devices/system/cpu/present');
  const cpus = (present !== undefined ? countCpuList(present) : undefined) ?? cpuinfo.processors;
  const kernelArch = readHostText(host, '/proc/sys/kernel/arch')?.trim() || undefined;
  const userland = detectUserland(host, { kernelArch, cpuArchitecture: cpuinfo.cpuArchitecture });
  if (userland.source === 'kernel') {
    notes.push(`${host.hostRoot} has no proc/self/exe: userland taken from the kernel (${userland.arch}); a 32-bit userland on a 64-bit kernel would look 64-bit here`);
  }
  const base = { model, modelSource, compatible, cpuinfo, isRaspberryPi, revision, memTotalBytes, cpus, kernelArch, userland, notes };
  return { ...base, cpuIsa: cpuIsaOf(base), rootDevice: detectRootDevice(host) };
}

function dmiProduct(host: HostPaths): string | undefined {
  const product = readHostText(host, '/sys/class/dmi/id/product_name')?.trim();
  if (!product) return undefined;
  const vendor = readHostText(host, '/sys/class/dmi/id/sys_vendor')?.trim();
  return vendor && !product.startsWith(vendor) ? `${vendor} ${product}` : product;
}

/**
 * The CPU's instruction set. ARMv6 Raspberry Pis report "CPU architecture: 7" but an "ARMv6-compatible"
 * model name: they are armv6, and arm/v7 images die there with SIGILL.
 */
function cpuIsaOf(f: Pick<BoardFacts, 'cpuinfo' | 'revision' | 'kernelArch' | 'userland'>): CpuIsa | undefined {
  const arch = f.cpuinfo.cpuArchitecture ?? '';
  if (/ARMv6/i.test(f.cpuinfo.modelName ?? '') || f.revision?.processor === 'BCM2835') return 'armv6';
  if (arch === '8' || /aarch64/i.test(arch) || f.kernelArch === 'aarch64' || f.userland.arch === 'arm64') return 'armv8';
  if (arch === '7' || /ARMv7/i.test(f.cpuinfo.modelName ?? '')) return 'armv7';
  if (['x86_64', 'i686', 'i386'].includes(f.kernelArch ?? '') || ['amd64', '386'].includes(f.userland.arch)) return 'x86';
  return undefined;
}
