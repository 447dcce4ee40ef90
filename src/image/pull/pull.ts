import fs from 'node:fs';
import os from 'node:os';
import { BerthError } from '../../errors.js';
import type { ImageRecord, ImageRecords, SnapshotRecord } from '../../store/images.js';
import type { ContentStore } from '../content/store.js';
import { verifyBytes } from '../digest.js';
import { descriptorPlatform, parseConfigBytes, parseManifestBytes, selectFromIndex, type Descriptor, type ImageConfig, type ImageManifest } from '../manifest.js';
import { formatPlatform, normalizeArch, type Platform } from '../platform.js';
import { formatReference, parseReference, repositoryName, type ImageRef } from '../reference.js';
import type { RegistryApi } from '../registry/types.js';
import { chainIds, type Snapshotter } from '../snapshot/snapshotter.js';
import { syscalls } from '../unpack/sys.js';
import { fetchAndUnpackLayer, type LayerJob } from './layer.js';
import { runPool } from './pool.js';
import { bufferReclaimer } from './reclaim.js';

export type LayerPhase = 'cached' | 'waiting' | 'downloading' | 'unpacking' | 'done';

/** What a pull reports as it goes; the CLI renders these, the agent publishes them on `progress`. */
export type PullEvent =
  | { type: 'resolved'; name: string; platform: string; manifestDigest: string; indexDigest?: string; layers: Array<{ digest: string; size: number; cached: boolean }> }
  | { type: 'layer'; digest: string; phase: LayerPhase; bytes: number; total: number }
  | { type: 'retry'; digest: string; attempt: number; delayMs: number; reason: string }
  | { type: 'warning'; message: string }
  | { type: 'done'; name: string; manifestDigest: string; downloadedBytes: number };

export interface PullDeps {
  readonly client: RegistryApi;
  readonly content: ContentStore;
  readonly snapshots: Snapshotter;
  readonly records: ImageRecords;
}

export interface PullRequest {
  readonly reference: string;
  /** Acceptable platforms, most preferred first (the board profile's list, or --platform). */
  readonly platforms: readonly Platform[];
  /** Layers fetched at once (board profile default). */
  readonly parallel: number;
  readonly signal?: AbortSignal;
  readonly onEvent?: (e: PullEvent) => void;
}

export interface PullResult {
  readonly image: ImageRecord;
  readonly config: ImageConfig;
  readonly manifest: ImageManifest;
}

const MiB = 1024 * 1024;

/**
 * Pulls an image: resolves the reference, picks the platform, fetches config and layers into the
 * content store and snapshots, and records the image only once everything is on disk and synced.
 * Interrupted at any point, the next pull resumes: finished blobs and snapshots are reused, partial
 * blobs are continued and re-verified, unfinished snapshots are rebuilt.
 */
export async function pullImage(deps: PullDeps, req: PullRequest): Promise<PullResult> {
  const signal = req.signal ?? new AbortController().signal;
  const emit = req.onEvent ?? (() => undefined);
  const ref = parseReference(req.reference);
  const what = formatReference(ref);
  const { manifestDigest, manifestBytes, manifest, indexDigest, indexBytes, platform: indexPlatform } = await resolve(deps.client, ref, req.platforms, what, signal);

  const configBytes = await readBlob(deps, ref.repository, manifest.config, signal);
  const config = parseConfigBytes(configBytes, `config of ${what}`);
  const platform = indexPlatform ?? { os: config.os, ...normalizeArch(config.architecture, config.variant) };
  if (!indexPlatform && !req.platforms.some((p) => formatPlatform(p) === formatPlatform(platform))) {
    throw new BerthError('notFound', `${what} is a single-platform image for ${formatPlatform(platform)}; this board runs ${req.platforms.map(formatPlatform).join(', ')}`, {
      hint: 'pass --platform to pull it anyway (it needs binfmt/QEMU to run)',
    });
  }
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new BerthError('invalid', `${what}: the manifest lists ${manifest.layers.length} layers but the config ${diffIds.length} diff_ids`);
  }
  for (const l of manifest.layers) {
    if (l.urls && l.urls.length > 0) throw new BerthError('invalid', `${what}: layer ${l.digest} is a foreign layer (urls); berth only fetches from the registry`);
  }

  const chain = chainIds(diffIds);
  const jobs: LayerJob[] = manifest.layers.map((descriptor, i) => ({ repository: ref.repository, descriptor, diffId: diffIds[i]!, chainId: chain[i]!, parent: chain[i - 1] }));
  const missing = jobs.filter((j) => !deps.snapshots.has(j.chainId));
  emit({ type: 'resolved', name: what, platform: formatPlatform(platform), manifestDigest, ...(indexDigest && { indexDigest }), layers: jobs.map((j) => ({ digest: j.descriptor.digest, size: j.descriptor.size, cached: !missing.includes(j) })) });
  for (const j of jobs) if (!missing.includes(j)) emit({ type: 'layer', digest: j.descriptor.digest, phase: 'cached', bytes: j.descriptor.size, total: j.descriptor.size });
  checkDiskSpace(deps, missing, what);

  let downloaded = 0;
  // One for the whole pull: layers unpacked at once share the heap, so they share the count.
  const reclaim = bufferReclaimer();
  const runLayer = async (job: LayerJob, jobSignal: AbortSignal): Promise<void> => {
    const { digest, size } = job.descriptor;
    const local = deps.content.has(digest);
    emit({ type: 'layer', digest, phase: local ? 'unpacking' : 'downloading', bytes: 0, total: size });
    let last = 0;
    await fetchAndUnpackLayer(
      {
        client: deps.client, content: deps.content, snapshots: deps.snapshots, signal: jobSignal, reclaim,
        onBytes: (bytes) => {
          if (!local) downloaded += bytes - last;
          // Throttle: an event per ~1 % or 256 KiB, whichever is larger.
          if (bytes === size || bytes - last >= Math.max(256 * 1024, size / 100)) {
            emit({ type: 'layer', digest, phase: local ? 'unpacking' : 'downloading', bytes, total: size });
          }
          last = bytes;
        },
        onRetry: (attempt, delayMs, reason) => emit({ type: 'retry', digest, attempt, delayMs, reason }),
        onWarning: (message) => emit({ type: 'warning', message: `layer ${digest}: ${message}` }),
      },
      job,
    );
    emit({ type: 'layer', digest, phase: 'done', bytes: size, total: size });
  };
  // overlay snapshots are independent of each other; copy snapshots build on their parent, in order.
  // Unpacking is CPU-bound, and one layer already keeps two cores busy: its gunzip on a thread-pool
  // thread, its hashing, tar parsing and file writes on the main thread, which all layers share. So one
  // core fewer than the machine has: on 2 cores one layer at a time was as fast as two and peaked
  // 3-5 MiB lower (BENCHMARKS.md, issue 22, pullpeak).
  const width = Math.max(1, Math.min(req.parallel, os.availableParallelism() - 1));
  await runPool(missing, deps.snapshots.mode === 'overlay' ? width : 1, runLayer, signal);

  // Unpacked files were written without an fsync each; one syncfs makes them durable before the record.
  if (missing.length > 0) syncfsOf(deps.snapshots.dir);
  if (indexDigest && indexBytes) deps.content.put(indexDigest, indexBytes, `index of ${what}`);
  deps.content.put(manifestDigest, manifestBytes, `manifest of ${what}`);
  const snapshotRecords: SnapshotRecord[] = jobs.map((j) => ({ chainId: j.chainId, ...(j.parent && { parent: j.parent }), diffId: j.diffId, layerDigest: j.descriptor.digest, size: j.descriptor.size }));
  const image: ImageRecord = {
    name: what,
    repository: repositoryName(ref),
    ...(indexDigest && { indexDigest }),
    manifestDigest,
    configDigest: manifest.config.digest,
    platform: formatPlatform(platform),
    size: manifest.layers.reduce((n, l) => n + l.size, 0),
    pulledAt: Date.now(),
  };
  const blobs = [...(indexDigest ? [indexDigest] : []), manifestDigest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
  deps.records.save(image, blobs, snapshotRecords);
  emit({ type: 'done', name: what, manifestDigest, downloadedBytes: downloaded });
  return { image, config, manifest };
}

interface Resolved {
  manifestDigest: string;
  manifestBytes: Buffer;
  manifest: ImageManifest;
  indexDigest?: string;
  indexBytes?: Buffer;
  platform?: Platform;
}

async function resolve(client: RegistryApi, ref: ImageRef, platforms: readonly Platform[], what: string, signal: AbortSignal): Promise<Resolved> {
  const top = await client.getManifest(ref.repository, ref.digest ?? ref.tag ?? 'latest', signal);
  const parsed = parseManifestBytes(top.bytes, top.contentType, `manifest of ${what}`);
  if (parsed.kind === 'manifest') return { manifestDigest: top.digest, manifestBytes: top.bytes, manifest: parsed.manifest };
  const { descriptor, platform } = selectFromIndex(parsed.index, platforms, what);
  const m = await client.getManifest(ref.repository, descriptor.digest, signal);
  verifyBytes(m.bytes, descriptor.digest, descriptor.size, `manifest ${descriptor.digest} of ${what}`);
  const inner = parseManifestBytes(m.bytes, m.contentType, `manifest ${descriptor.digest} of ${what}`);
  if (inner.kind !== 'manifest') throw new BerthError('invalid', `${what}: index entry ${descriptor.digest} is itself an index`);
  return { manifestDigest: descriptor.digest, manifestBytes: m.bytes, manifest: inner.manifest, indexDigest: top.digest, indexBytes: top.bytes, platform: descriptorPlatform(descriptor) ?? platform };
}

/** Small blobs (the config): from the store, or fetched whole, verified, and stored. */
async function readBlob(deps: PullDeps, repository: string, d: Descriptor, signal: AbortSignal): Promise<Buffer> {
  if (deps.content.has(d.digest)) return deps.content.read(d.digest);
  if (d.size > 16 * MiB) throw new BerthError('invalid', `config blob ${d.digest} is ${d.size} bytes; refusing more than 16 MiB`);
  const { stream } = await deps.client.openBlob(repository, d.digest, 0, signal);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > d.size) throw new BerthError('invalid', `config blob ${d.digest} is larger than its descriptor's ${d.size} bytes`);
    chunks.push(c as Buffer);
  }
  const bytes = Buffer.concat(chunks);
  deps.content.put(d.digest, bytes, `config ${d.digest}`);
  return bytes;
}

/** Refuses to start a pull that cannot fit: download size plus an estimate of the unpacked size. */
function checkDiskSpace(deps: PullDeps, missing: readonly LayerJob[], what: string): void {
  let download = 0;
  let unpack = 0;
  for (const j of missing) {
    const { digest, size, mediaType } = j.descriptor;
    if (!deps.content.has(digest)) download += size;
    // gzip and zstd layers typically expand 2–3×; a plain tar is its own size.
    unpack += /gzip|zstd/.test(mediaType) ? Math.ceil(size * 2.5) : size;
  }
  if (missing.length === 0) return;
  const need = download + unpack + 16 * MiB;
  const st = fs.statfsSync(deps.content.dir);
  const free = st.bavail * st.bsize;
  if (free < need) {
    const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
    throw new BerthError('resource', `not enough disk space to pull ${what}: it needs about ${mib(need)} (${mib(download)} to download, ~${mib(unpack)} unpacked), and ${mib(free)} is free at ${deps.content.dir}`, {
      hint: 'free space with berth image prune or berth rmi',
    });
  }
}

function syncfsOf(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    syscalls().syncfs(fd);
  } finally {
    fs.closeSync(fd);
  }
}
