import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { applyLayer, type WhiteoutMode } from '../../src/image/unpack/apply.js';
import { syscalls } from '../../src/image/unpack/sys.js';
import { rawPaxHeader, tarOf, type TarEntrySpec } from '../helpers/images/oci.js';

type Spec = TarEntrySpec;
const layer = (specs: Spec[]): Promise<Buffer> => tarOf(specs.map((s) => ({ mtime: 1_700_000_000, ...s })));

let tmp: string;
let root: string;
let outside: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-unpack-'));
  root = path.join(tmp, 'snapshot');
  outside = path.join(tmp, 'outside');
  fs.mkdirSync(root);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'host data', { mode: 0o600 });
});
afterEach(() => {
  try {
    execFileSync('umount', [path.join(tmp, 'merged')], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const apply = async (specs: Spec[], whiteouts: WhiteoutMode = 'overlay', dir = root) =>
  applyLayer(Readable.from(await layer(specs)), dir, { whiteouts });

/** The outside directory holds exactly what it did before, byte for byte and mode for mode. */
function expectOutsideUntouched(): void {
  expect(fs.readdirSync(outside)).toEqual(['secret']);
  expect(fs.readFileSync(path.join(outside, 'secret'), 'utf8')).toBe('host data');
  expect(fs.statSync(path.join(outside, 'secret')).mode & 0o777).toBe(0o600);
  expect(fs.statSync(outside).mode & 0o777).toBe(0o755);
}

async function expectHostile(specs: Spec[], entry: string, why: RegExp): Promise<void> {
  const err = await apply(specs).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BerthError);
  expect((err as BerthError).category).toBe('invalid');
  expect((err as BerthError).message).toContain(`hostile layer entry "${entry}"`);
  expect((err as BerthError).message).toMatch(why);
  expectOutsideUntouched();
}

describe('applyLayer: faithful unpacking', () => {
  it('recreates files, modes, owners, setuid, symlinks, hardlinks, FIFOs, devices and xattrs', async () => {
    const r = await apply([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/busybox', content: 'ELF…', mode: 0o4755, uid: 0, gid: 0 },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
      { name: 'bin/abs', type: 'symlink', linkname: '/bin/busybox' },
      { name: 'bin/hard', type: 'link', linkname: 'bin/busybox' },
      { name: 'home/user/file', content: 'x', uid: 1000, gid: 1001, mode: 0o640, pax: { 'SCHILY.xattr.user.note': 'hello' } },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
      { name: 'dev/null', type: 'character-device', mode: 0o666 },
    ]);
    expect(r.entries).toBe(9);
    const st = fs.statSync(path.join(root, 'bin/busybox'));
    expect(st.mode & 0o7777).toBe(0o4755);
    expect(fs.readlinkSync(path.join(root, 'bin/sh'))).toBe('busybox');
    expect(fs.readlinkSync(path.join(root, 'bin/abs'))).toBe('/bin/busybox');
    expect(fs.statSync(path.join(root, 'bin/hard')).ino).toBe(st.ino);
    const f = fs.statSync(path.join(root, 'home/user/file'));
    expect([f.uid, f.gid, f.mode & 0o777]).toEqual([1000, 1001, 0o640]);
    expect(syscalls().lgetxattr(path.join(root, 'home/user/file'), 'user.note')?.toString()).toBe('hello');
    expect(fs.statSync(path.join(root, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(fs.lstatSync(path.join(root, 'run/fifo')).isFIFO()).toBe(true);
    expect(fs.lstatSync(path.join(root, 'dev/null')).isCharacterDevice()).toBe(true);
    expect(fs.statSync(path.join(root, 'bin')).mtime.getTime()).toBe(1_700_000_000_000);
  });

  it('keeps binary xattr values byte for byte (security.capability, user.*)', async () => {
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    const bin = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41]);
    const pax = rawPaxHeader('PaxHeaders/ping', { 'SCHILY.xattr.security.capability': cap, 'SCHILY.xattr.user.bin': bin });
    // A docker layer carries raw xattr bytes in PAX; tarOf would write them as UTF-8, hence rawPaxHeader.
    const tar = Buffer.concat([pax, await tarOf([{ name: 'ping', content: 'ELF', mode: 0o755 }])]);
    await applyLayer(Readable.from(tar), root, { whiteouts: 'overlay' });
    expect(syscalls().lgetxattr(path.join(root, 'ping'), 'user.bin')).toEqual(bin);
    expect(syscalls().lgetxattr(path.join(root, 'ping'), 'security.capability')).toEqual(cap);
  });

  it('in overlay mode, whiteouts and opaque dirs make a correct overlayfs stack, wherever the marker sits', async () => {
    const lower = path.join(tmp, 'lower');
    fs.mkdirSync(lower);
    await apply([{ name: 'gone', content: 'old' }, { name: 'keep', content: 'k' }, { name: 'cfg/a', content: 'a' }, { name: 'cfg/b', content: 'b' }], 'overlay', lower);
    await apply([{ name: 'cfg/new', content: 'n' }, { name: '.wh.gone' }, { name: 'cfg/.wh..wh..opq' }], 'overlay', root);
    expect(fs.lstatSync(path.join(root, 'gone')).rdev).toBe(0);
    expect(fs.lstatSync(path.join(root, 'gone')).isCharacterDevice()).toBe(true);
    expect(syscalls().lgetxattr(path.join(root, 'cfg'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    const merged = path.join(tmp, 'merged');
    fs.mkdirSync(merged);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${root}:${lower}`, merged]);
    expect(fs.readdirSync(merged).sort()).toEqual(['cfg', 'keep']);
    expect(fs.readdirSync(path.join(merged, 'cfg'))).toEqual(['new']);
  });

  it('in merged mode, whiteouts delete and an opaque dir keeps only what this layer wrote', async () => {
    await apply([{ name: 'gone', content: 'old' }, { name: 'cfg/a', content: 'a' }, { name: 'cfg/b', content: 'b' }], 'merged');
    await apply([{ name: 'cfg/new', content: 'n' }, { name: '.wh.gone' }, { name: 'cfg/.wh..wh..opq' }, { name: 'cfg/later', content: 'l' }], 'merged');
    expect(fs.existsSync(path.join(root, 'gone'))).toBe(false);
    expect(fs.readdirSync(path.join(root, 'cfg')).sort()).toEqual(['later', 'new']);
  });

  it('a file or directory entry replaces a symlink instead of following it (CVE-2021-32760)', async () => {
    await apply([
      { name: 'f', type: 'symlink', linkname: path.join(outside, 'secret') },
      { name: 'f', content: 'mine' },
      { name: 'd', type: 'symlink', linkname: outside },
      { name: 'd', type: 'directory', mode: 0o777 },
    ]);
    expect(fs.readFileSync(path.join(root, 'f'), 'utf8')).toBe('mine');
    expect(fs.lstatSync(path.join(root, 'd')).isDirectory()).toBe(true);
    expectOutsideUntouched();
  });
});

describe('applyLayer: hostile layers are refused and touch nothing outside', () => {
  it('../ traversal', async () => {
    await expectHostile([{ name: '../outside/secret', content: 'pwned' }], '../outside/secret', /path traversal/);
    await expectHostile([{ name: 'a/../../outside/x', content: 'pwned' }], 'a/../../outside/x', /path traversal/);
  });

  it('an absolute symlink, then a write through it', async () => {
    await expectHostile([{ name: 'evil', type: 'symlink', linkname: outside }, { name: 'evil/pwned', content: 'x' }], 'evil/pwned', /"evil" is a symlink/);
  });

  it('a relative symlink climbing out, then a write through it', async () => {
    await expectHostile([{ name: 'up', type: 'symlink', linkname: '../outside' }, { name: 'up/secret', content: 'x' }], 'up/secret', /"up" is a symlink/);
  });

  it('a symlink to a directory, then a directory entry beneath it', async () => {
    await expectHostile([{ name: 'evil', type: 'symlink', linkname: outside }, { name: 'evil/sub/', type: 'directory' }], 'evil/sub/', /symlink/);
  });

  it('a directory already written into, then replaced by a symlink, then written through', async () => {
    await expectHostile(
      [{ name: 'a/', type: 'directory' }, { name: 'a/x', content: 'x' }, { name: 'a', type: 'symlink', linkname: outside }, { name: 'a/pwned', content: 'x' }],
      'a/pwned',
      /"a" is a symlink/,
    );
  });

  it('hardlinks to paths outside the layer', async () => {
    await expectHostile([{ name: 'h', type: 'link', linkname: '../outside/secret' }], 'h', /path traversal/);
    await expectHostile([{ name: 'h', type: 'link', linkname: path.join(outside, 'secret') }], 'h', /not in the layer/);
    await expectHostile([{ name: 'l', type: 'symlink', linkname: outside }, { name: 'h', type: 'link', linkname: 'l/secret' }], 'h', /"l" is a symlink/);
  });

  it('"/." replaced by a symlink (CVE-2021-29136)', async () => {
    await expectHostile([{ name: '.', type: 'symlink', linkname: outside }, { name: 'secret', content: 'x' }], '.', /replaces the root/);
    await expectHostile([{ name: './', type: 'symlink', linkname: outside }], './', /replaces the root/);
  });

  it('a whiteout through a symlink', async () => {
    await expectHostile([{ name: 'l', type: 'symlink', linkname: outside }, { name: 'l/.wh.secret' }], 'l/.wh.secret', /symlink/);
  });

  it("overlay's own xattrs", async () => {
    await expectHostile([{ name: 'd/', type: 'directory', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } }], 'd/', /reserved xattr trusted.overlay.redirect/);
  });
});
