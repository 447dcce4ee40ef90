// Builds real, reproducible multi-arch test images from Debian's busybox-static and pushes them to
// a real registry, so berth's puller is tested against the same documents and blobs it meets in the wild.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { baseEntries, bigLayerEntries, busyboxEntries, PLATFORMS, sortedTar, TEST_ARCHES, type TestArch } from './busybox.js';
import { blobOf, EPOCH, jsonBlob, mediaTypes, sha256, type Blob, type Compression, type Descriptor, type Platform } from './oci.js';
import { pushBlob, pushManifest, type BasicAuth, type RegistryTarget } from './push.js';

export type { TestArch } from './busybox.js';
export { TEST_ARCHES, PLATFORMS, busyboxBinary, busyboxPath, elfInfo } from './busybox.js';
export { tarOf, MT, MANIFEST_ACCEPT, platformString, type TarEntrySpec, type Platform } from './oci.js';

export interface BuiltLayer {
  digest: string;
  size: number;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: string;
  mediaType: string;
}

export interface BuiltManifest {
  platform: Platform;
  digest: string;
  size: number;
  mediaType: string;
  configDigest: string;
  layers: BuiltLayer[];
}

export interface BuiltImage {
  repo: string;
  tag: string;
  /** Absent when the tag points straight at a single manifest (`index: false`). */
  indexDigest?: string;
  indexSize?: number;
  indexMediaType?: string;
  manifests: BuiltManifest[];
}

interface CommonOptions {
  /** Docker schema 2 media types instead of OCI. */
  docker?: boolean;
  /** Layer compression; default gzip. */
  compression?: Compression;
  /** Basic auth, for a registry with htpasswd auth. */
  auth?: BasicAuth;
}

export interface BusyboxImageOptions extends CommonOptions {
  /** Default: all four. */
  arches?: TestArch[];
  /** Root skeleton as its own layer with the same bytes on every platform (default true); else merged into the busybox layer. */
  sharedBaseLayer?: boolean;
  /** Adds a layer holding big/random.bin of this many MiB of seeded PRNG bytes, shared by all platforms. */
  bigLayerMB?: number;
  /** Uncompressed tars stacked on top of every platform's image, e.g. whiteouts or hostile layers. */
  extraLayers?: Buffer[];
  /** Default true. false: tag the (single) platform's manifest directly, no index; needs exactly one arch. */
  index?: boolean;
}

export interface SinglePlatformOptions extends CommonOptions {
  platform: Platform;
  /** Uncompressed tars, bottom first. */
  layers: Buffer[];
  cmd?: string[];
}

interface Layer {
  blob: Blob;
  diffId: string;
}

// Compressed layers by (diff_id, compression): the base and big layers are the same bytes for every
// platform and every test, and gzip of a big layer costs seconds. FIFO-bounded to keep memory modest.
const layerCache = new Map<string, Promise<Layer>>();

function compressLayer(tar: Buffer, compression: Compression, mediaType: string): Promise<Layer> {
  const diffId = sha256(tar);
  const key = `${diffId}:${compression}:${mediaType}`;
  let p = layerCache.get(key);
  if (!p) {
    p = (async () => {
      // Node's gzip writes mtime 0 and no file name, so the same tar and level give the same bytes.
      const bytes = compression === 'gzip' ? await promisify(gzip)(tar, { level: 6 }) : tar;
      return { blob: blobOf(bytes, mediaType), diffId };
    })();
    layerCache.set(key, p);
    p.catch(() => layerCache.delete(key));
    while (layerCache.size > 16) layerCache.delete(layerCache.keys().next().value!);
  }
  return p;
}

/** Forgets compressed layers, so a rebuild really recompresses (the reproducibility test). */
export function clearLayerCache(): void {
  layerCache.clear();
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Compresses the layers, writes config and manifest, pushes blobs then the manifest under `ref`. */
async function pushPlatform(
  reg: RegistryTarget,
  repo: string,
  ref: string | undefined,
  platform: Platform,
  tars: Array<{ tar: Buffer; createdBy: string }>,
  opts: CommonOptions & { cmd?: string[] },
): Promise<BuiltManifest> {
  const mt = mediaTypes(opts.docker ?? false, opts.compression ?? 'gzip');
  const layers = await Promise.all(tars.map((t) => compressLayer(t.tar, opts.compression ?? 'gzip', mt.layer)));
  const config = jsonBlob(
    {
      created: EPOCH,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Cmd: opts.cmd ?? ['/bin/sh'], Env: [PATH_ENV] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: tars.map((t) => ({ created: EPOCH, created_by: t.createdBy })),
    },
    mt.config,
  );
  const manifest = jsonBlob(
    { schemaVersion: 2, mediaType: mt.manifest, config: config.desc, layers: layers.map((l) => l.blob.desc) },
    mt.manifest,
  );
  for (const b of [config, ...layers.map((l) => l.blob)]) await pushBlob(reg, repo, b, opts);
  await pushManifest(reg, repo, ref ?? manifest.desc.digest, manifest, opts);
  return {
    platform,
    digest: manifest.desc.digest,
    size: manifest.desc.size,
    mediaType: mt.manifest,
    configDigest: config.desc.digest,
    layers: layers.map((l) => ({ ...l.blob.desc, diffId: l.diffId })),
  };
}

/**
 * Pushes `repo:tag` as a multi-arch busybox image: per platform [base skeleton] + busybox layer
 * [+ big random layer] [+ extra layers], and an index (OCI or Docker manifest list) over them.
 */
export async function pushBusyboxImage(reg: RegistryTarget, repo: string, tag: string, opts: BusyboxImageOptions = {}): Promise<BuiltImage> {
  const arches = opts.arches ?? [...TEST_ARCHES];
  const useIndex = opts.index ?? true;
  if (!useIndex && arches.length !== 1) throw new Error('pushBusyboxImage: index: false needs exactly one arch');
  const shared = opts.sharedBaseLayer ?? true;
  const base = shared ? await sortedTar(baseEntries()) : undefined;
  const big = opts.bigLayerMB ? await sortedTar(bigLayerEntries(opts.bigLayerMB)) : undefined;

  const manifests: BuiltManifest[] = [];
  for (const arch of arches) {
    const tars: Array<{ tar: Buffer; createdBy: string }> = [];
    if (base) tars.push({ tar: base, createdBy: 'berth-test: root skeleton' });
    const own = await busyboxEntries(arch);
    tars.push({ tar: await sortedTar(shared ? own : [...own, ...baseEntries()]), createdBy: `berth-test: busybox-static ${arch}` });
    if (big) tars.push({ tar: big, createdBy: `berth-test: ${opts.bigLayerMB} MiB pseudo-random` });
    (opts.extraLayers ?? []).forEach((tar, i) => tars.push({ tar, createdBy: `berth-test: extra layer ${i}` }));
    manifests.push(await pushPlatform(reg, repo, useIndex ? undefined : tag, PLATFORMS[arch], tars, opts));
  }
  if (!useIndex) return { repo, tag, manifests };

  const mt = mediaTypes(opts.docker ?? false, opts.compression ?? 'gzip');
  const entries: Descriptor[] = manifests.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, platform: m.platform }));
  const index = jsonBlob({ schemaVersion: 2, mediaType: mt.index, manifests: entries }, mt.index);
  await pushManifest(reg, repo, tag, index, opts);
  return { repo, tag, indexDigest: index.desc.digest, indexSize: index.desc.size, indexMediaType: mt.index, manifests };
}

/** Pushes `repo:tag` as one platform's manifest (no index) over the given uncompressed layer tars. */
export async function pushSinglePlatformImage(reg: RegistryTarget, repo: string, tag: string, opts: SinglePlatformOptions): Promise<BuiltManifest> {
  const tars = opts.layers.map((tar, i) => ({ tar, createdBy: `berth-test: layer ${i}` }));
  return pushPlatform(reg, repo, tag, opts.platform, tars, opts);
}
