// Binary xattrs through the shipped CLI: bin/berth runs dist/bundle, where esbuild bundled its own copy of
// tar-stream. unpack.test.ts checks the same values through src/ and node_modules' tar-stream, so it
// passed while the bundle decoded them as UTF-8 (fixed in 972be42); only a pull by the bundle sees that.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { syscalls } from '../../src/image/unpack/sys.js';
import { berthSync, runBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { FIXTURE_HOSTS } from '../helpers/host-tree.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { rawPaxHeader, tarOf } from '../helpers/images/oci.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

let registry: RegistryInstance;
let tmp: string;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-pull-xattr-'));
});
afterAll(async () => {
  await registry?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

it('berth pull keeps binary xattr values byte for byte (security.capability, user.*)', async () => {
  // A v2 capability struct (every capability permitted, effective): not valid UTF-8, and the kernel checks its size.
  const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
  const bin = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41]);
  const pax = rawPaxHeader('PaxHeaders/ping', { 'SCHILY.xattr.security.capability': cap, 'SCHILY.xattr.user.bin': bin });
  const layer = Buffer.concat([pax, await tarOf([{ name: 'ping', content: 'ELF', mode: 0o755 }])]);
  await pushBusyboxImage(registry, 'cli/xattr', 'v1', { arches: ['arm64'], extraLayers: [layer] });

  const root = path.join(tmp, 'state');
  const ref = `${registry.host}/cli/xattr:v1`;
  const env = { BERTH_HOST_ROOT: path.join(FIXTURE_HOSTS, 'rpi-zero-2-w') };
  const pull = await runBerth(['--root', root, 'pull', '-q', ref], env);
  expect(pull.stderr).toBe('');
  expect(pull.code).toBe(0);
  // The top layer's snapshot (<root>/snapshots/<chain id hex>) holds ping in overlay and copy mode alike.
  const inspect = JSON.parse(berthSync(['--root', root, 'image', 'inspect', ref], env).stdout) as { layers: Array<{ chainId: string }> };
  const ping = path.join(root, 'snapshots', inspect.layers.at(-1)!.chainId.replace(/^sha256:/, ''), 'ping');
  expect(fs.readFileSync(ping, 'utf8')).toBe('ELF');
  expect(syscalls().lgetxattr(ping, 'user.bin')).toEqual(bin);
  expect(syscalls().lgetxattr(ping, 'security.capability')).toEqual(cap);
});
