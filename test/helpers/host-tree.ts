import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostPaths, type HostPaths } from '../../src/host/paths.js';

export const FIXTURE_HOSTS = fileURLToPath(new URL('../fixtures/hosts/', import.meta.url));

/** A host tree from test/fixtures/hosts, read-only. */
export function fixtureHost(name: string): HostPaths {
  return hostPaths(path.join(FIXTURE_HOSTS, name));
}

/**
 * A writable copy of a fixture host (or an empty tree) with files replaced or removed (`null`), for edge
 * cases. Returns the host paths and the directory; the directory is removed by `cleanup`.
 */
export function variantHost(
  base: string | undefined,
  files: Record<string, string | Buffer | null>,
): { host: HostPaths; dir: string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-host-'));
  if (base !== undefined) fs.cpSync(path.join(FIXTURE_HOSTS, base), dir, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel);
    if (content === null) fs.rmSync(file, { force: true, recursive: true });
    else {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
    }
  }
  return { host: hostPaths(dir), dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A 64-byte ELF header stub for /proc/self/exe: class 32/64 and e_machine (40 ARM, 183 AArch64, 62 x86-64). */
export function elfHeader(bits: 32 | 64, machine: number): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = bits === 64 ? 2 : 1;
  b[5] = 1;
  b[6] = 1;
  b.writeUInt16LE(3, 16);
  b.writeUInt16LE(machine, 18);
  return b;
}
