import { BerthError } from '../errors.js';

/** An OCI platform (image-spec `platform` object), normalized the way containerd does it. */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  aarch64: { architecture: 'arm64' },
  arm64: { architecture: 'arm64' },
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  amd64: { architecture: 'amd64' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
  '386': { architecture: '386' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  arm: { architecture: 'arm' },
};

/** Normalizes an architecture/variant pair: aarch64→arm64 (v8 dropped), armhf→arm/v7, arm → arm/v7 … */
export function normalizeArch(architecture: string, variant?: string): { architecture: string; variant?: string } {
  const lower = architecture.toLowerCase();
  const alias = ARCH_ALIASES[lower];
  const arch = alias?.architecture ?? lower;
  let v = variant?.toLowerCase() || alias?.variant;
  if (arch === 'arm64') {
    // containerd treats arm64 v8 as the default variant and drops it.
    if (v === '8' || v === 'v8' || v === 'v8.0') v = undefined;
  } else if (arch === 'arm') {
    if (v === undefined || v === '' || v === '7') v = 'v7';
    else if (/^[5-8]$/.test(v)) v = `v${v}`;
  }
  return v === undefined ? { architecture: arch } : { architecture: arch, variant: v };
}

/** Parses `os/arch[/variant]` or `arch[/variant]` (os defaults to linux). */
export function parsePlatform(spec: string): Platform {
  const parts = spec.trim().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) {
    throw new BerthError('invalid', `invalid platform "${spec}": expected os/arch[/variant], e.g. linux/arm/v7`);
  }
  let os = 'linux';
  let rest = parts;
  if (parts.length === 3 || (parts.length === 2 && !(parts[0]!.toLowerCase() in ARCH_ALIASES) && isOsName(parts[0]!))) {
    os = parts[0]!.toLowerCase();
    rest = parts.slice(1);
  }
  const [arch, variant] = rest;
  if (arch === undefined || !/^[a-z0-9_.-]+$/i.test(arch) || (variant !== undefined && !/^[a-z0-9.]+$/i.test(variant))) {
    throw new BerthError('invalid', `invalid platform "${spec}": expected os/arch[/variant], e.g. linux/arm/v7`);
  }
  return { os, ...normalizeArch(arch, variant) };
}

function isOsName(s: string): boolean {
  return ['linux', 'windows', 'darwin', 'freebsd'].includes(s.toLowerCase());
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** True when `spec` is already in normalized `os/arch[/variant]` form. */
export function isNormalizedPlatform(spec: string): boolean {
  try {
    return formatPlatform(parsePlatform(spec)) === spec;
  } catch {
    return false;
  }
}
