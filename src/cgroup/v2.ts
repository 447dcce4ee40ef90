import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';

/**
 * One cgroup v2 directory and the interface files berth reads and writes. Paths are whatever the caller
 * hands in, so tests point it at a temp tree and the agent at `/sys/fs/cgroup/...`.
 */

/** One line of a PSI file: share of wall time (percent) some/all tasks stalled, and the total in µs. */
export interface PressureLine {
  readonly avg10: number;
  readonly avg60: number;
  readonly avg300: number;
  readonly totalUs: number;
}

export interface Pressure {
  readonly some: PressureLine;
  /** Absent in the root cgroup's cpu.pressure on older kernels. */
  readonly full?: PressureLine;
}

/** Parses `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` (+ `full …`); undefined when malformed. */
export function parsePressure(text: string): Pressure | undefined {
  const lines: Partial<Record<'some' | 'full', PressureLine>> = {};
  for (const raw of text.split('\n')) {
    const m = /^(some|full) avg10=([\d.]+) avg60=([\d.]+) avg300=([\d.]+) total=(\d+)$/.exec(raw.trim());
    if (m) lines[m[1] as 'some' | 'full'] = { avg10: Number(m[2]), avg60: Number(m[3]), avg300: Number(m[4]), totalUs: Number(m[5]) };
  }
  return lines.some ? { some: lines.some, ...(lines.full && { full: lines.full }) } : undefined;
}

/** Parses flat keyed files (`memory.events`, `cpu.stat`, `cgroup.events`): `key value` per line. */
export function parseKeyed(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

export class Cgroup {
  constructor(readonly dir: string) {}

  child(name: string): Cgroup {
    return new Cgroup(path.join(this.dir, name));
  }

  exists(): boolean {
    return fs.existsSync(path.join(this.dir, 'cgroup.procs'));
  }

  /** A file's text, or undefined when the cgroup or the file is gone (a container that just exited). */
  read(file: string): string | undefined {
    try {
      return fs.readFileSync(path.join(this.dir, file), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENODEV') return undefined;
      throw err;
    }
  }

  /** A single-number file (`memory.current`); `max` reads as Infinity. */
  number(file: string): number | undefined {
    const t = this.read(file)?.trim();
    if (t === undefined) return undefined;
    if (t === 'max') return Infinity;
    return /^\d+$/.test(t) ? Number(t) : undefined;
  }

  keyed(file: string): Record<string, number> | undefined {
    const t = this.read(file);
    return t === undefined ? undefined : parseKeyed(t);
  }

  pressure(resource: 'memory' | 'cpu' | 'io' = 'memory'): Pressure | undefined {
    const t = this.read(`${resource}.pressure`);
    return t === undefined ? undefined : parsePressure(t);
  }

  write(file: string, value: string): void {
    try {
      fs.writeFileSync(path.join(this.dir, file), value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new BerthError(code === 'ENOENT' ? 'notFound' : 'host', `cannot write "${value}" to ${path.join(this.dir, file)}: ${code}`, { cause: err });
    }
  }

  /** cgroup v2 freezer: writes `cgroup.freeze`; the kernel finishes asynchronously (see `frozen`). */
  setFrozen(frozen: boolean): void {
    this.write('cgroup.freeze', frozen ? '1' : '0');
  }

  /** True once every task is frozen (`cgroup.events` frozen 1). */
  frozen(): boolean {
    return this.keyed('cgroup.events')?.frozen === 1;
  }
}
