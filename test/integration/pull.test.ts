import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { parsePlatform } from '../../src/image/platform.js';
import type { PullEvent } from '../../src/image/pull/pull.js';
import { RegistryClient } from '../../src/image/registry/client.js';
import { ImageService } from '../../src/image/service.js';
import { hostPaths } from '../../src/host/paths.js';
import { ImageRecords } from '../../src/store/images.js';
import { StateStore } from '../../src/store/store.js';
import zlib from 'node:zlib';
import { pushBusyboxImage, tarOf } from '../helpers/images/build.js';
import { blobOf, jsonBlob, MT, sha256 } from '../helpers/images/oci.js';
import { pushBlob, pushManifest } from '../helpers/images/push.js';
import { startFaultProxy, type FaultProxy } from '../helpers/services/fault-proxy.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

const ARM64_FIRST = ['linux/arm64', 'linux/arm/v7', 'linux/arm/v6'].map(parsePlatform);
let registry: RegistryInstance;
let proxy: FaultProxy;
let tmp: string;
const opened: StateStore[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
  await pushBusyboxImage(registry, 'multi/busybox', 'v1');
  // Same base and busybox layers as multi/busybox, plus one of its own.
  await pushBusyboxImage(registry, 'multi/other', 'v1', { arches: ['arm64'], extraLayers: [await tarOf([{ name: 'other', content: 'o' }])] });
});
afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
});
afterEach(() => {
  opened.splice(0).forEach((s) => s.close());
  proxy.setFaults([]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function service(mode?: 'overlay' | 'copy'): { images: ImageService; root: string } {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-pull-'));
  const root = path.join(tmp, 'root');
  const store = StateStore.open(root);
  opened.push(store);
  const images = new ImageService(new ImageRecords(store), { root, host: hostPaths('/'), ...(mode && { mode }) });
  return { images, root };
}
const clientFor = (host: string) => new RegistryClient(host, { retry: { baseDelayMs: 10, maxDelayMs: 50 } });

/** The merged root of an image: an overlay mount of its snapshots, or the top snapshot in copy mode. */
function readImageFile(images: ImageService, name: string, file: string): string {
  const chain = images.records.chain(name).map((c) => images.snapshots.path(c));
  if (images.snapshots.mode === 'copy') return fs.readFileSync(path.join(chain.at(-1)!, file), 'utf8');
  const merged = path.join(tmp, `merged-${crypto.randomBytes(3).toString('hex')}`);
  fs.mkdirSync(merged);
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...chain].reverse().join(':')}`, merged]);
  try {
    return fs.readFileSync(path.join(merged, file), 'utf8');
  } finally {
    execFileSync('umount', [merged]);
  }
}

describe('pull from a real registry', () => {
  it.each([
    [['linux/arm64', 'linux/arm/v7', 'linux/arm/v6'], 'linux/arm64'],
    [['linux/arm/v7', 'linux/arm/v6'], 'linux/arm/v7'],
    [['linux/arm/v6'], 'linux/arm/v6'],
    [['linux/amd64', 'linux/386'], 'linux/amd64'],
  ])('with preferences %j picks %s and unpacks that variant', async (prefs, expected) => {
    const { images } = service();
    const r = await images.pull(clientFor(registry.host), { reference: `${registry.host}/multi/busybox:v1`, platforms: prefs.map(parsePlatform), parallel: 2 });
    expect(r.image.platform).toBe(expected);
    expect(r.image.indexDigest).toMatch(/^sha256:/);
    expect(readImageFile(images, r.image.name, 'etc/berth-platform').trim()).toBe(expected);
    const inspect = images.inspect(`${registry.host}/multi/busybox:v1`);
    expect(inspect).toMatchObject({ platform: expected, manifestDigest: r.image.manifestDigest, indexDigest: r.image.indexDigest });
    expect(inspect.layers).toHaveLength(2);
  });

  it('no matching platform: a notFound error listing what the image offers', async () => {
    const { images } = service();
    const err = await images.pull(clientFor(registry.host), { reference: `${registry.host}/multi/busybox:v1`, platforms: [parsePlatform('linux/riscv64')], parallel: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect((err as BerthError).category).toBe('notFound');
    expect((err as BerthError).message).toMatch(/offers: linux\/amd64, linux\/arm64, linux\/arm\/v7, linux\/arm\/v6/);
    expect(images.list()).toEqual([]);
  });

  it('images that share a layer share its snapshot; a second pull downloads nothing', async () => {
    const { images } = service();
    await images.pull(clientFor(registry.host), { reference: `${registry.host}/multi/busybox:v1`, platforms: ARM64_FIRST, parallel: 2 });
    const events: PullEvent[] = [];
    await images.pull(clientFor(registry.host), { reference: `${registry.host}/multi/other:v1`, platforms: ARM64_FIRST, parallel: 2, onEvent: (e) => events.push(e) });
    const resolved = events.find((e) => e.type === 'resolved');
    expect(resolved?.type === 'resolved' && resolved.layers.map((l) => l.cached)).toEqual([true, true, false]);
    const again: PullEvent[] = [];
    await images.pull(clientFor(registry.host), { reference: `${registry.host}/multi/other:v1`, platforms: ARM64_FIRST, parallel: 2, onEvent: (e) => again.push(e) });
    expect(again.at(-1)).toMatchObject({ type: 'done', downloadedBytes: 0 });
    expect(images.snapshots.list()).toHaveLength(3);
  });

  it('Docker media types and uncompressed layers pull too; the copy fallback gives the same tree', async () => {
    await pushBusyboxImage(registry, 'multi/docker', 'v1', { docker: true, arches: ['armhf'] });
    await pushBusyboxImage(registry, 'multi/plain', 'v1', { compression: 'none', arches: ['armhf'] });
    for (const repo of ['multi/docker', 'multi/plain']) {
      const { images } = service('copy');
      const r = await images.pull(clientFor(registry.host), { reference: `${registry.host}/${repo}:v1`, platforms: [parsePlatform('linux/arm/v7')], parallel: 1 });
      expect(readImageFile(images, r.image.name, 'etc/berth-platform').trim()).toBe('linux/arm/v7');
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('whiteouts and opaque dirs from upper layers hide lower content, in overlay and copy mode alike', async () => {
    const upper = await tarOf([{ name: 'etc/.wh.group' }, { name: 'bin/.wh..wh..opq' }, { name: 'bin/only', content: 'x' }]);
    await pushBusyboxImage(registry, 'multi/whiteout', 'v1', { arches: ['arm64'], extraLayers: [upper] });
    for (const mode of ['overlay', 'copy'] as const) {
      const { images } = service(mode);
      const r = await images.pull(clientFor(registry.host), { reference: `${registry.host}/multi/whiteout:v1`, platforms: ARM64_FIRST, parallel: 2 });
      expect(() => readImageFile(images, r.image.name, 'etc/group')).toThrow(/ENOENT/);
      expect(() => readImageFile(images, r.image.name, 'bin/busybox')).toThrow(/ENOENT/);
      expect(readImageFile(images, r.image.name, 'bin/only')).toBe('x');
      expect(readImageFile(images, r.image.name, 'etc/passwd')).toMatch(/root/);
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('pull under faults', () => {
  it('a connection dropped mid-blob is resumed with a Range request', async () => {
    await pushBusyboxImage(registry, 'multi/big', 'v1', { arches: ['arm64'], bigLayerMB: 4 });
    proxy.setFaults([{ method: 'GET', path: /\/blobs\//, nth: 3, dropAfterBytes: 1_000_000 }]);
    const { images } = service();
    const events: PullEvent[] = [];
    const r = await images.pull(clientFor(proxy.host), { reference: `${proxy.host}/multi/big:v1`, platforms: ARM64_FIRST, parallel: 1, onEvent: (e) => events.push(e) });
    expect(events.some((e) => e.type === 'retry')).toBe(true);
    expect(proxy.requests.some((q) => /^bytes=\d+-$/.test(String(q.headers.range ?? '')) && q.status === 206)).toBe(true);
    expect(images.inspect(r.image.name).layers).toHaveLength(3);
  });

  it('a corrupted blob fails verification and nothing is recorded or kept', async () => {
    const { images } = service();
    // Blob GETs in order: config, base layer (275 bytes), busybox layer (~1 MB): corrupt the third.
    proxy.setFaults([{ method: 'GET', path: /\/blobs\//, nth: 3, corrupt: 5000 }]);
    const err = await images.pull(clientFor(proxy.host), { reference: `${proxy.host}/multi/busybox:v1`, platforms: ARM64_FIRST, parallel: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BerthError);
    expect({ category: (err as BerthError).category, message: (err as BerthError).message }).toMatchObject({ category: 'invalid' });
    expect(images.list()).toEqual([]);
    expect(fs.readdirSync(path.join(images.snapshots.dir, '.tmp'))).toEqual([]);
    expect(images.content.partials()).toEqual([]);
  });

  it('a layer whose contents do not match the config diff_id is refused', async () => {
    const layer = blobOf(zlib.gzipSync(await tarOf([{ name: 'a', content: 'a' }])), MT.ociLayerGzip);
    const config = jsonBlob({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(Buffer.from('not this layer'))] } }, MT.ociConfig);
    const manifest = jsonBlob({ schemaVersion: 2, mediaType: MT.ociManifest, config: config.desc, layers: [layer.desc] }, MT.ociManifest);
    for (const b of [layer, config]) await pushBlob(registry, 'multi/liar', b);
    await pushManifest(registry, 'multi/liar', 'v1', manifest);
    const { images } = service();
    const err = await images.pull(clientFor(registry.host), { reference: `${registry.host}/multi/liar:v1`, platforms: ARM64_FIRST, parallel: 1 }).catch((e: unknown) => e);
    expect((err as BerthError).message).toMatch(/unpacks to sha256:[a-f0-9]{64}, but the image config says/);
    expect(images.list()).toEqual([]);
    expect(images.snapshots.list()).toEqual([]);
  });

  it('a hostile layer is refused naming the entry, and the store stays consistent', async () => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-outside-'));
    const evil = await tarOf([{ name: 'escape', type: 'symlink', linkname: outside }, { name: 'escape/pwned', content: 'x' }]);
    await pushBusyboxImage(registry, 'multi/evil', 'v1', { arches: ['arm64'], extraLayers: [evil] });
    const { images } = service();
    const err = await images.pull(clientFor(registry.host), { reference: `${registry.host}/multi/evil:v1`, platforms: ARM64_FIRST, parallel: 2 }).catch((e: unknown) => e);
    expect((err as BerthError).message).toMatch(/hostile layer entry "escape\/pwned": "escape" is a symlink/);
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(images.list()).toEqual([]);
    expect(fs.readdirSync(path.join(images.snapshots.dir, '.tmp'))).toEqual([]);
    fs.rmSync(outside, { recursive: true });
  });
});

describe('zstd layers', () => {
  const z = zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer };
  it(z.zstdCompressSync ? 'unpack with zlib zstd' : 'give a clear error on a Node without zlib zstd', async () => {
    const tarBytes = await tarOf([{ name: 'hello', content: 'zstd' }]);
    // Without zstd support here, any bytes with the zstd magic number reach the same check.
    const body = z.zstdCompressSync ? z.zstdCompressSync(tarBytes) : Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64)]);
    const layer = blobOf(body, 'application/vnd.oci.image.layer.v1.tar+zstd');
    const config = jsonBlob({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tarBytes)] } }, MT.ociConfig);
    for (const b of [layer, config]) await pushBlob(registry, 'multi/zstd', b);
    await pushManifest(registry, 'multi/zstd', 'v1', jsonBlob({ schemaVersion: 2, mediaType: MT.ociManifest, config: config.desc, layers: [layer.desc] }, MT.ociManifest));
    const { images } = service();
    const pull = images.pull(clientFor(registry.host), { reference: `${registry.host}/multi/zstd:v1`, platforms: ARM64_FIRST, parallel: 1 });
    if (z.zstdCompressSync) {
      const r = await pull;
      expect(readImageFile(images, r.image.name, 'hello')).toBe('zstd');
    } else {
      const err = await pull.catch((e: unknown) => e);
      expect(err).toMatchObject({ category: 'host', message: expect.stringMatching(/zstd-compressed layers need Node 22.15 or newer \(this is Node 20/) });
      expect(images.list()).toEqual([]);
    }
  });
});

describe('removing images', () => {
  it('rmi frees what only that image used; prune frees what nothing references', async () => {
    const { images } = service();
    const busybox = `${registry.host}/multi/busybox:v1`;
    const other = `${registry.host}/multi/other:v1`;
    await images.pull(clientFor(registry.host), { reference: busybox, platforms: ARM64_FIRST, parallel: 2 });
    await images.pull(clientFor(registry.host), { reference: other, platforms: ARM64_FIRST, parallel: 2 });
    expect(images.snapshots.list()).toHaveLength(3);
    // other's own layer goes; the two it shares with busybox stay, and busybox is intact.
    expect(images.remove(other)).toMatchObject({ name: other, snapshots: 1 });
    expect(images.snapshots.list()).toHaveLength(2);
    expect(images.list().map((i) => i.name)).toEqual([busybox]);
    expect(readImageFile(images, busybox, 'etc/berth-platform').trim()).toBe('linux/arm64');
    expect(images.remove(busybox)).toMatchObject({ snapshots: 2 });
    expect(images.prune()).toMatchObject({ blobs: 0, snapshots: 0 });
    expect(images.content.list()).toEqual([]);
    expect(images.snapshots.list()).toEqual([]);
  });

  it('rmi of an unknown image is notFound', () => {
    const { images } = service();
    expect(() => images.remove('nothing/here:1')).toThrow(/no such image/);
  });
});
