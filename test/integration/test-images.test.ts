// The multi-arch test images the puller is tested against, checked against a real docker-registry:
// what the registry serves back is what an OCI client must accept (platforms, diff_ids, real ELF binaries).
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { extract, type Header } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearLayerCache, elfInfo, MT, platformString, pushBusyboxImage, pushSinglePlatformImage, tarOf, type BuiltImage, type TarEntrySpec, type TestArch } from '../helpers/images/build.js';
import { sha256 } from '../helpers/images/oci.js';
import { getBlob, getManifest } from '../helpers/images/push.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

type Entry = { header: Header; body: Buffer };

async function untar(tar: Buffer): Promise<Entry[]> {
  const ex = extract();
  const out: Entry[] = [];
  const done = (async () => {
    for await (const e of ex) {
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      out.push({ header: e.header, body: Buffer.concat(chunks) });
    }
  })();
  ex.end(tar);
  await done;
  return out;
}

const json = (b: Buffer): any => JSON.parse(b.toString());
const layerTar = (bytes: Buffer, mediaType: string): Buffer => (mediaType.endsWith('gzip') ? gunzipSync(bytes) : bytes);
const fileIn = async (tar: Buffer, name: string): Promise<Buffer> => {
  const e = (await untar(tar)).find((x) => x.header.name === name);
  if (!e) throw new Error(`${name} not in layer`);
  return e.body;
};

describe('test images (busybox-static, real registry)', () => {
  let reg: RegistryInstance;
  let oci: BuiltImage;
  const timings: string[] = [];

  beforeAll(async () => {
    reg = await startRegistry();
    const t0 = Date.now();
    oci = await pushBusyboxImage(reg, 'berth-test/busybox', 'v1');
    timings.push(`4-arch OCI build+push ${Date.now() - t0} ms`);
  });
  afterAll(async () => {
    console.log(timings.join('\n'));
    await reg?.stop();
  });

  it('serves a 4-platform OCI index whose manifests, configs and diff_ids agree', async () => {
    const idx = await getManifest(reg, 'berth-test/busybox', 'v1', MT.ociIndex);
    expect(idx.mediaType).toBe(MT.ociIndex);
    expect(idx.digest).toBe(oci.indexDigest);
    const index = json(idx.bytes);
    expect(index.manifests.map((m: any) => platformString(m.platform))).toEqual(['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'linux/arm/v6']);

    for (const entry of index.manifests) {
      expect(entry.mediaType).toBe(MT.ociManifest);
      const m = await getManifest(reg, 'berth-test/busybox', entry.digest, MT.ociManifest);
      expect(m.digest).toBe(entry.digest);
      const manifest = json(m.bytes);
      const config = json(await getBlob(reg, 'berth-test/busybox', manifest.config.digest));
      expect(manifest.config.mediaType).toBe(MT.ociConfig);
      expect({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }).toEqual(entry.platform);
      expect(config.config.Cmd).toEqual(['/bin/sh']);
      expect(manifest.layers).toHaveLength(2);
      const diffIds: string[] = [];
      for (const l of manifest.layers) {
        expect(l.mediaType).toBe(MT.ociLayerGzip);
        diffIds.push(sha256(layerTar(await getBlob(reg, 'berth-test/busybox', l.digest), l.mediaType)));
      }
      expect(diffIds).toEqual(config.rootfs.diff_ids);
      const own = layerTar(await getBlob(reg, 'berth-test/busybox', manifest.layers[1].digest), MT.ociLayerGzip);
      expect((await fileIn(own, 'etc/berth-platform')).toString()).toBe(`${platformString(entry.platform)}\n`);
    }
    // The root skeleton is one blob shared by all four platforms: the puller's dedup has something to dedup.
    expect(new Set(oci.manifests.map((m) => m.layers[0]!.digest)).size).toBe(1);
    expect(new Set(oci.manifests.map((m) => m.layers[1]!.digest)).size).toBe(4);
    timings.push(...oci.manifests.map((m) => `${platformString(m.platform)} ${m.digest} layers ${m.layers.map((l) => l.size).join('+')} B`));
    timings.push(`index ${oci.indexDigest} (${oci.indexSize} B)`);
  });

  it('puts a 32-bit hard-float ARM busybox in the armhf image, with the usual root tree', async () => {
    const armhf = oci.manifests.find((m) => m.platform.variant === 'v7')!;
    const tar = layerTar(await getBlob(reg, 'berth-test/busybox', armhf.layers[1]!.digest), MT.ociLayerGzip);
    const entries = await untar(tar);
    const bin = entries.find((e) => e.header.name === 'bin/busybox')!;
    expect(elfInfo(bin.body)).toEqual({ bits: 32, machine: 40, float: 'hard' });
    expect(bin.header.mode).toBe(0o755);
    expect(entries.find((e) => e.header.name === 'bin/sh')?.header).toMatchObject({ type: 'symlink', linkname: 'busybox' });
    const names = entries.map((e) => e.header.name);
    expect(names).toEqual([...names].sort());
    const base = await untar(layerTar(await getBlob(reg, 'berth-test/busybox', armhf.layers[0]!.digest), MT.ociLayerGzip));
    expect(base.find((e) => e.header.name === 'tmp/')?.header).toMatchObject({ type: 'directory', mode: 0o1777 });
    expect(base.map((e) => e.header.name)).toEqual(expect.arrayContaining(['dev/', 'etc/passwd', 'etc/group', 'proc/', 'sys/']));
  });

  it('round-trips the Docker media types (manifest list, schema 2, rootfs.diff.tar.gzip)', async () => {
    const built = await pushBusyboxImage(reg, 'berth-test/busybox-docker', 'v1', { docker: true, arches: ['arm64', 'armel'] });
    const idx = await getManifest(reg, 'berth-test/busybox-docker', 'v1', MT.dockerList);
    expect(idx.mediaType).toBe(MT.dockerList);
    expect(idx.digest).toBe(built.indexDigest);
    const index = json(idx.bytes);
    expect(index.manifests.map((m: any) => platformString(m.platform))).toEqual(['linux/arm64', 'linux/arm/v6']);
    const m = await getManifest(reg, 'berth-test/busybox-docker', index.manifests[1].digest, MT.dockerManifest);
    expect(m.mediaType).toBe(MT.dockerManifest);
    const manifest = json(m.bytes);
    expect(manifest.config.mediaType).toBe(MT.dockerConfig);
    expect(manifest.layers.map((l: any) => l.mediaType)).toEqual([MT.dockerLayerGzip, MT.dockerLayerGzip]);
    const bin = await fileIn(layerTar(await getBlob(reg, 'berth-test/busybox-docker', manifest.layers[1].digest), MT.dockerLayerGzip), 'bin/busybox');
    expect(elfInfo(bin)).toEqual({ bits: 32, machine: 40, float: 'soft' });
  });

  it('is reproducible: a second build of the same image has the same index digest', async () => {
    clearLayerCache();
    const again = await pushBusyboxImage(reg, 'berth-test/busybox-again', 'v1');
    expect(again.indexDigest).toBe(oci.indexDigest);
    expect(again.manifests).toEqual(oci.manifests);
  });

  it('builds uncompressed layers, big shared layers, extra layers and index-less tags', async () => {
    const extra = await tarOf([{ name: 'etc/.wh.passwd' }]);
    const built = await pushBusyboxImage(reg, 'berth-test/plain', 'v1', { compression: 'none', bigLayerMB: 2, extraLayers: [extra], arches: ['amd64', 'armhf'] });
    for (const m of built.manifests) {
      expect(m.layers.map((l) => l.mediaType)).toEqual(Array(4).fill(MT.ociLayerTar));
      for (const l of m.layers) expect(l.digest).toBe(l.diffId);
    }
    const [a, b] = built.manifests;
    expect(a!.layers[2]!.digest).toBe(b!.layers[2]!.digest);
    expect(a!.layers[2]!.size).toBeGreaterThan(2 * 1024 * 1024);
    // Seeded PRNG bytes do not compress: gzip must not shrink the big layer noticeably.
    const gz = await pushBusyboxImage(reg, 'berth-test/big', 'v1', { bigLayerMB: 2, arches: ['amd64'], index: false });
    expect(gz.indexDigest).toBeUndefined();
    expect(gz.manifests[0]!.layers[2]!.size).toBeGreaterThan(2 * 1024 * 1024);
    expect((await getManifest(reg, 'berth-test/big', 'v1', MT.ociManifest)).digest).toBe(gz.manifests[0]!.digest);

    const single = await pushSinglePlatformImage(reg, 'berth-test/single', 'v1', { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, layers: [extra] });
    const config = json(await getBlob(reg, 'berth-test/single', single.configDigest));
    expect(config.rootfs.diff_ids).toEqual([sha256(extra)]);
    expect(config.variant).toBe('v7');
  });

  it('tarOf keeps hostile names, links, devices and PAX records verbatim', async () => {
    const spec: TarEntrySpec[] = [
      { name: '../evil', content: 'x' },
      { name: '/abs', content: 'y', mode: 0 },
      { name: '.', type: 'directory' },
      { name: './', type: 'directory', mode: 0o777 },
      { name: 'a/../../b', type: 'symlink', linkname: '/etc/shadow' },
      { name: 'hl', type: 'link', linkname: '../evil' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'fifo', type: 'fifo' },
      { name: 'suid', content: '#!/bin/sh\n', mode: 0o4755, uid: 1000, gid: 1000 },
      { name: 'x'.repeat(150), content: 'long name without a slash' },
      { name: 'xattr', content: 'z', pax: { 'SCHILY.xattr.user.berth': 'yes' } },
    ];
    const entries = await untar(await tarOf(spec));
    expect(entries.map((e) => e.header.name)).toEqual(spec.map((s) => s.name));
    expect(entries.map((e) => e.header.type)).toEqual(spec.map((s) => s.type ?? 'file'));
    expect(entries[1]!.header.mode).toBe(0);
    expect(entries[4]!.header.linkname).toBe('/etc/shadow');
    expect(entries[5]!.header.linkname).toBe('../evil');
    expect(entries[6]!.header).toMatchObject({ devmajor: 1, devminor: 3, mode: 0o666 });
    expect(entries[8]!.header).toMatchObject({ mode: 0o4755, uid: 1000, gid: 1000 });
    expect(entries[9]!.body.toString()).toBe('long name without a slash');
    expect(entries[10]!.header.pax).toMatchObject({ 'SCHILY.xattr.user.berth': 'yes' });
    expect(entries.every((e) => e.header.mtime?.getTime() === 0)).toBe(true);
  });

  const hostArch: TestArch | undefined = ({ x64: 'amd64', arm64: 'arm64' } as const)[process.arch as 'x64' | 'arm64'];
  it.skipIf(!hostArch)('the pulled busybox for this host actually runs', async () => {
    const m = oci.manifests[['amd64', 'arm64'].indexOf(hostArch!)]!;
    const tar = layerTar(await getBlob(reg, 'berth-test/busybox', m.layers[1]!.digest), MT.ociLayerGzip);
    const dir = await mkdtemp(join(tmpdir(), 'berth-busybox-'));
    try {
      await writeFile(join(dir, 'busybox'), await fileIn(tar, 'bin/busybox'));
      await chmod(join(dir, 'busybox'), 0o755);
      const { stdout } = await promisify(execFile)(join(dir, 'busybox'), ['echo', 'hi']);
      expect(stdout).toBe('hi\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
