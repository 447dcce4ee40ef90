import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpioNewc } from '../helpers/vm/cpio.js';
import { resolveModules } from '../helpers/vm/initramfs.js';

// The VM harness's own pure parts: a broken initramfs would only show as a silent kernel panic.
describe('VM harness', () => {
  it('writes newc cpio with 4-byte alignment and a trailer', () => {
    const buf = cpioNewc([
      { path: 'bin', type: 'dir', mode: 0o755 },
      { path: 'bin/x', type: 'file', mode: 0o755, data: 'abc' },
      { path: 'bin/y', type: 'symlink', mode: 0o777, data: 'x' },
    ]);
    expect(buf.length % 4).toBe(0);
    const text = buf.toString('latin1');
    expect(text.startsWith('070701')).toBe(true);
    expect(text).toContain('bin/x\0');
    expect(text).toContain('TRAILER!!!\0');
    // The file header: mode 0100755, size 3, name length 6 ("bin/x" + NUL).
    const i = text.indexOf('bin/x\0') - 110;
    expect(text.slice(i + 14, i + 22)).toBe((0o100755).toString(16).padStart(8, '0'));
    expect(text.slice(i + 54, i + 62)).toBe('00000003');
    expect(text.slice(i + 94, i + 102)).toBe('00000006');
    const dataAt = text.indexOf('bin/x\0') + 6;
    expect(text.slice(dataAt + ((4 - (dataAt % 4)) % 4), dataAt + ((4 - (dataAt % 4)) % 4) + 3)).toBe('abc');
  });

  it('orders kernel modules after their dependencies, read from .modinfo', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-mods-'));
    const mod = (name: string, deps: string): void => fs.writeFileSync(path.join(dir, `${name}.ko`), Buffer.from(`\x7fELF...\0name=${name}\0depends=${deps}\0vermagic=x\0`, 'latin1'));
    mod('a', 'b,c');
    mod('b', 'c');
    mod('c', '');
    mod('9pnet-virtio', 'c');
    try {
      expect(resolveModules(dir, ['a', '9pnet_virtio']).map((f) => path.basename(f))).toEqual(['c.ko', 'b.ko', 'a.ko', '9pnet-virtio.ko']);
      expect(() => resolveModules(dir, ['missing'])).toThrow(/missing not found/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
