import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { armv6Trampolines, DEBIAN_NODE_SHARE, EXTERNAL_BUILTINS, sharedBuiltinEntries } from '../../src/flash/bundle-armv6.js';

describe('armv6 bundle parts', () => {
  it("rewrites koffi's trampoline index load into two ARMv6-encodable halves, and refuses a source it does not know", () => {
    const src = '.macro trampoline id\n    .cfi_startproc\n    mov r12, \\id\n    b RelayTrampoline\n';
    const out = armv6Trampolines(src);
    expect(out).toContain('    mov r12, #(\\id & 0xff)\n    orr r12, r12, #(\\id & 0xff00)\n    b RelayTrampoline');
    expect(out).not.toContain('mov r12, \\id\n');
    expect(() => armv6Trampolines('    movw r12, \\id\n')).toThrow(/trampoline macro/);
  });

  it("links Debian's externalized built-ins into the installed bundle, only for a bundle that carries them", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-armv6-'));
    try {
      expect(sharedBuiltinEntries(dir, '/opt/berth')).toEqual([]);
      fs.mkdirSync(path.join(dir, 'node', 'share', 'nodejs'), { recursive: true });
      const entries = sharedBuiltinEntries(dir, '/opt/berth');
      expect(entries).toHaveLength(EXTERNAL_BUILTINS.length);
      expect(entries).toContainEqual({ kind: 'symlink', path: `${DEBIAN_NODE_SHARE}/acorn/dist/acorn.js`, target: '/opt/berth/node/share/nodejs/acorn/dist/acorn.js' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
