/**
 * The device's side of the bundle artifact (docs/upgrade.md §2 steps 1–3): resolve the platform's
 * manifest in the index named by digest, check free space, download the one layer into the content
 * store (every byte hashed, resumed after a drop), and only then unpack it into a fresh directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { BerthError } from '../../errors.js';
import type { ContentStore } from '../../image/content/store.js';
import { parseManifestBytes, selectFromIndex, type Descriptor } from '../../image/manifest.js';
import type { Platform } from '../../image/platform.js';
import { downloadChunks } from '../../image/pull/layer.js';
import type { RegistryApi } from '../../image/registry/types.js';
import { applyLayer } from '../../image/unpack/apply.js';
import { BUNDLE_LAYER_TYPE, readBundleInfo, UNPACKED_SIZE, type BundleInfo } from './artifact.js';

export interface BundleFetch {
  readonly client: RegistryApi;
  readonly repository: string;
  /** The index digest the signed desired state names: nothing else is trusted. */
  readonly digest: string;
  /** The board's platforms, preferred first. */
  readonly platforms: readonly Platform[];
  readonly content: ContentStore;
  /** Bytes free where `dest` goes (statfs; injected so tests can say "full"). */
  readonly freeBytes: (dir: string) => number;
  readonly signal: AbortSignal;
  readonly onRetry?: (attempt: number, delayMs: number, reason: string) => void;
}

export interface FetchedBundle {
  readonly manifest: string;
  readonly layer: Descriptor;
  readonly info: BundleInfo;
}

/**
 * Fetches the bundle for this board and unpacks it into `dest` (created; must not exist). Throws
 * `invalid` for a tampered or foreign artifact (naming the digest), `resource` when space is short,
 * `notFound` when the index has no bundle for the board. `dest` is removed on failure.
 */
export async function fetchBundle(o: BundleFetch, dest: string): Promise<FetchedBundle> {
  const what = `agent bundle ${o.client.registry}/${o.repository}@${o.digest}`;
  const index = await o.client.getManifest(o.repository, o.digest, o.signal);
  const parsed = parseManifestBytes(index.bytes, index.contentType, what);
  if (parsed.kind !== 'index') throw new BerthError('invalid', `${what} is not an image index`);
  const { descriptor } = selectFromIndex(parsed.index, o.platforms, what);
  const got = await o.client.getManifest(o.repository, descriptor.digest, o.signal);
  const m = parseManifestBytes(got.bytes, got.contentType, `${what} (${descriptor.digest})`);
  if (m.kind !== 'manifest' || m.manifest.layers.length !== 1 || m.manifest.layers[0]!.mediaType !== BUNDLE_LAYER_TYPE) {
    throw new BerthError('invalid', `${what}: manifest ${descriptor.digest} is not a berth agent bundle (one ${BUNDLE_LAYER_TYPE} layer)`);
  }
  const layer = m.manifest.layers[0]!;
  const unpacked = Number(layer.annotations?.[UNPACKED_SIZE] ?? 0);
  checkSpace(o, path.dirname(dest), layer, Number.isSafeInteger(unpacked) ? unpacked : 0);

  if (!o.content.has(layer.digest)) {
    const ingest = await o.content.ingest(layer.digest, layer.size);
    try {
      const ctx = { client: o.client, signal: o.signal, onBytes: (): void => {}, onRetry: o.onRetry ?? ((): void => {}) };
      for await (const _chunk of downloadChunks(ctx, { repository: o.repository, descriptor: layer }, ingest)) {
        // written and hashed by downloadChunks; nothing is unpacked before the whole blob checked out
      }
      await ingest.commit();
    } catch (err) {
      // A wrong digest is discarded by commit; a drop keeps the partial for the next attempt's resume.
      await ingest.close();
      if (err instanceof BerthError && err.category === 'invalid' && !err.message.includes(layer.digest)) {
        throw new BerthError('invalid', `${what}: layer ${layer.digest}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
  fs.mkdirSync(dest, { mode: 0o755 });
  try {
    const tar = fs.createReadStream(o.content.path(layer.digest)).pipe(zlib.createGunzip({ chunkSize: 128 * 1024 }));
    await applyLayer(tar, dest, { whiteouts: 'none', signal: o.signal });
    return { manifest: descriptor.digest, layer, info: await readBundleInfo(dest) };
  } catch (err) {
    fs.rmSync(dest, { recursive: true, force: true });
    throw err;
  }
}

/** The layer, once downloaded, and once unpacked, plus 10 % for the file system's own overhead. */
function checkSpace(o: BundleFetch, dir: string, layer: Descriptor, unpacked: number): void {
  const need = Math.ceil((o.content.has(layer.digest) ? 0 : layer.size) + unpacked * 1.1);
  const free = o.freeBytes(dir);
  if (free < need) {
    throw new BerthError('resource', `not enough space for agent bundle ${layer.digest} under ${dir}: ${need} bytes needed, ${free} free`, {
      hint: 'remove unused images (berth image prune) or old logs, then upgrade again',
    });
  }
}

/** statfs: bytes an unprivileged writer may still use (what df calls Avail). */
export function statfsFree(dir: string): number {
  const st = fs.statfsSync(dir);
  return st.bavail * st.bsize;
}
