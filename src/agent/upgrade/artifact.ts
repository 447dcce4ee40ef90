/**
 * The agent bundle as an OCI artifact (docs/upgrade.md §1): one image index, one manifest per platform,
 * each with one gzip-tar layer (the bundle directory) and the bundle's berth-bundle.json as config.
 * Both sides use these names: scripts/bundle-push.mjs writes them, the device's fetch reads them.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '../../errors.js';
import { execTool } from '../../flash/exec.js';
import { digestOf } from '../../image/digest.js';
import { MEDIA, type Descriptor } from '../../image/manifest.js';
import { parsePlatform, type Platform } from '../../image/platform.js';
import type { RegistryClient } from '../../image/registry/client.js';
import { pushBlob, putManifest } from '../../image/registry/push.js';

export const BUNDLE_ARTIFACT_TYPE = 'application/vnd.berth.agent-bundle.v1';
export const BUNDLE_CONFIG_TYPE = 'application/vnd.berth.agent-bundle.config.v1+json';
export const BUNDLE_LAYER_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** On the layer: bytes the bundle takes once unpacked, for the device's free-space check. */
export const UNPACKED_SIZE = 'org.berth.bundle.unpacked-size';
export const VERSION = 'org.opencontainers.image.version';

/** The bundle's own manifest (src/flash/bundle.ts BundleManifest), as far as an upgrade needs it. */
export interface BundleInfo {
  readonly berth: string;
  readonly arch?: string;
  readonly node?: string;
}

export interface BundleSource {
  /** linux/arm64, linux/arm/v7, linux/amd64 … */
  readonly platform: string;
  /** A bundle directory (berth-bundle.json, bin/berth, …). */
  readonly dir: string;
}

export interface PushedIndex {
  readonly digest: string;
  readonly platforms: ReadonlyArray<{ platform: string; manifest: string; layer: string; version: string }>;
}

/** Reads berth-bundle.json of a bundle directory (throws `invalid` naming the directory). */
export async function readBundleInfo(dir: string): Promise<BundleInfo> {
  let info: BundleInfo;
  try {
    info = JSON.parse(await fs.readFile(path.join(dir, 'berth-bundle.json'), 'utf8')) as BundleInfo;
  } catch (err) {
    throw new BerthError('invalid', `${dir} is not a berth agent bundle (berth-bundle.json: ${(err as Error).message})`, { cause: err });
  }
  if (typeof info.berth !== 'string' || !/^[\w.+-]{1,64}$/.test(info.berth)) throw new BerthError('invalid', `${dir}/berth-bundle.json: "berth" must be a version such as 0.4.0`);
  return info;
}

/** The bundle directory as a gzip tar (root-owned, numeric ids), in memory: bundles are tens of MiB. */
async function packBundle(dir: string): Promise<{ tgz: Buffer; unpackedBytes: number }> {
  const { stdout } = await execTool('tar', ['-C', dir, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-czf', '-', '.']);
  return { tgz: stdout, unpackedBytes: await treeBytes(dir) };
}

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const d of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile()) total += (await fs.stat(path.join(d.parentPath, d.name))).size;
  }
  return total;
}

/**
 * Pushes each bundle as a platform manifest and all of them as one index tagged `tag`. Every bundle
 * must carry the same berth version (one index is one release). Returns the index digest: what
 * `berth fleet upgrade` puts in the signed desired state.
 */
export async function pushBundleIndex(client: RegistryClient, repository: string, tag: string, sources: readonly BundleSource[], signal?: AbortSignal): Promise<PushedIndex> {
  if (sources.length === 0) throw new BerthError('usage', 'no bundle to push');
  const manifests: Descriptor[] = [];
  const platforms: Array<{ platform: string; manifest: string; layer: string; version: string }> = [];
  let version: string | undefined;
  for (const src of sources) {
    const platform = parsePlatform(src.platform);
    const info = await readBundleInfo(src.dir);
    if (version !== undefined && info.berth !== version) throw new BerthError('invalid', `${src.dir} is berth ${info.berth}, the other bundles ${version}: one index holds one release`);
    version = info.berth;
    const config = Buffer.from(JSON.stringify(info));
    const { tgz, unpackedBytes } = await packBundle(src.dir);
    const layer = await pushBlob(client, repository, tgz, signal);
    const cfg = await pushBlob(client, repository, config, signal);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      artifactType: BUNDLE_ARTIFACT_TYPE,
      config: { mediaType: BUNDLE_CONFIG_TYPE, digest: cfg.digest, size: cfg.size },
      layers: [{ mediaType: BUNDLE_LAYER_TYPE, digest: layer.digest, size: layer.size, annotations: { [UNPACKED_SIZE]: String(unpackedBytes) } }],
      annotations: { [VERSION]: info.berth },
    }));
    const digest = await putManifest(client, repository, digestOf(manifest), manifest, MEDIA.ociManifest, signal);
    manifests.push({ mediaType: MEDIA.ociManifest, digest, size: manifest.length, platform: ociPlatform(platform), annotations: { [VERSION]: info.berth } });
    platforms.push({ platform: src.platform, manifest: digest, layer: layer.digest, version: info.berth });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, artifactType: BUNDLE_ARTIFACT_TYPE, manifests, annotations: { [VERSION]: version! } }));
  const digest = await putManifest(client, repository, tag, index, MEDIA.ociIndex, signal);
  return { digest, platforms };
}

function ociPlatform(p: Platform): { architecture: string; os: string; variant?: string } {
  return { os: p.os, architecture: p.architecture, ...(p.variant !== undefined && { variant: p.variant }) };
}
