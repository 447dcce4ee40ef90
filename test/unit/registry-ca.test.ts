// registryCa: the extra CAs a registry connection trusts. bin/berth keeps Node from loading
// NODE_EXTRA_CA_CERTS at start-up, so the file must reach registry TLS through here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeContext } from '../../src/cli/context.js';
import { registryCa } from '../../src/image/registry/open.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function root(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ca-'));
  dirs.push(d);
  return d;
}

describe('registryCa', () => {
  it('is undefined without certs.d and without NODE_EXTRA_CA_CERTS', () => {
    expect(registryCa(makeContext({ root: root() }, {}), 'reg.example:5000')).toBeUndefined();
  });

  it("joins the registry's certs.d/ca.crt and the NODE_EXTRA_CA_CERTS file", () => {
    const r = root();
    fs.mkdirSync(path.join(r, 'certs.d', 'reg.example:5000'), { recursive: true });
    fs.writeFileSync(path.join(r, 'certs.d', 'reg.example:5000', 'ca.crt'), 'REGISTRY-CA');
    fs.writeFileSync(path.join(r, 'extra.pem'), 'EXTRA-CA\n');
    const ctx = makeContext({ root: r }, { NODE_EXTRA_CA_CERTS: path.join(r, 'extra.pem') });
    expect(registryCa(ctx, 'reg.example:5000')?.toString()).toBe('REGISTRY-CA\nEXTRA-CA\n\n');
    expect(registryCa(ctx, 'other.example')?.toString()).toBe('EXTRA-CA\n\n');
  });

  it('skips a NODE_EXTRA_CA_CERTS file that does not exist, as Node does', () => {
    expect(registryCa(makeContext({ root: root() }, { NODE_EXTRA_CA_CERTS: '/nonexistent/ca.pem' }), 'reg.example')).toBeUndefined();
  });
});
