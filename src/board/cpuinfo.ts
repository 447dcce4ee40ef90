import { BerthError } from '../errors.js';

export interface CpuInfo {
  /** Number of `processor : N` entries. */
  readonly processors: number;
  readonly modelName?: string;
  /** `CPU architecture` (ARM): "7", "8", or "AArch64" on some kernels. */
  readonly cpuArchitecture?: string;
  readonly hardware?: string;
  readonly revision?: string;
  readonly serial?: string;
  /** `Model` line the Raspberry Pi kernel appends. */
  readonly model?: string;
}

/**
 * Parses /proc/cpuinfo strictly enough to notice a garbage or cut-off file: every non-blank line must be
 * `key : value`, no control characters, and at least one processor entry.
 */
export function parseCpuinfo(text: string, source = '/proc/cpuinfo'): CpuInfo {
  if (text.trim() === '') throw new BerthError('host', `${source} is empty`);
  // eslint-disable-next-line no-control-regex
  const bad = /[\x00-\x08\x0b-\x1f\x7f\ufffd]/.exec(text);
  if (bad) throw new BerthError('host', `${source} is not text: control or invalid byte at offset ${bad.index}`);
  let processors = 0;
  const first: Record<string, string> = {};
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const colon = line.indexOf(':');
    if (colon < 0) {
      const truncated = i === lines.length - 1 ? ' (file looks truncated)' : '';
      throw new BerthError('host', `${source} line ${i + 1} is not "key : value": ${JSON.stringify(line.slice(0, 60))}${truncated}`);
    }
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'processor' && /^\d+$/.test(value)) processors++;
    if (!(key in first)) first[key] = value;
  });
  if (processors === 0) throw new BerthError('host', `${source} lists no processor entries (file truncated or not cpuinfo)`);
  const pick = (k: string): string | undefined => (first[k] === undefined || first[k] === '' ? undefined : first[k]);
  return {
    processors,
    modelName: pick('model name') ?? pick('Processor'),
    cpuArchitecture: pick('CPU architecture'),
    hardware: pick('Hardware'),
    revision: pick('Revision'),
    serial: pick('Serial'),
    model: pick('Model'),
  };
}

/** MemTotal from /proc/meminfo, in bytes. */
export function parseMemTotal(text: string, source = '/proc/meminfo'): number {
  const m = /^MemTotal:\s+(\d+)\s*kB\s*$/m.exec(text);
  if (!m) throw new BerthError('host', `${source} has no "MemTotal: N kB" line`);
  return Number(m[1]) * 1024;
}

/** Counts CPUs in a kernel cpu list like "0-3,5". */
export function countCpuList(list: string): number | undefined {
  let n = 0;
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    n += m[2] === undefined ? 1 : Number(m[2]) - Number(m[1]) + 1;
  }
  return n > 0 ? n : undefined;
}
