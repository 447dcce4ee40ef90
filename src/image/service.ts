import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { ArchiveFormat } from './archive/format.js';
import type { Platform } from './platform.js';
import { BerthError } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import { readHostText } from '../host/read.js';
import type { ImageRecords, ImageRecord } from '../store/images.js';
import { ContentStore } from './content/store.js';
import { parseConfigBytes, parseManifestBytes, type ImageConfig } from './manifest.js';
import type { PullRequest, PullResult } from './pull/pull.js';
import { formatReference, parseReference, repositoryName } from './reference.js';
import type { RegistryApi } from './registry/types.js';
import { chainIds, defaultSnapshotMode, Snapshotter, type SnapshotMode } from './snapshot/snapshotter.js';

export interface ImageInspect {
  readonly name: string;
  readonly repository: string;
  readonly platform: string;
  readonly manifestDigest: string;
  readonly indexDigest?: string;
  readonly configDigest: string;
  readonly size: number;
  readonly pulledAt: string;
  readonly snapshotMode: SnapshotMode;
  readonly layers: ReadonlyArray<{ digest: string; mediaType: string; size: number; diffId: string; chainId: string }>;
  readonly config: ImageConfig;
}

export interface PruneResult {
  readonly blobs: number;
  readonly snapshots: number;
  readonly partials: number;
  readonly bytes: number;
}

/** Partial downloads younger than this may belong to a pull in progress; prune leaves them. */
const PARTIAL_GRACE_MS = 10 * 60 * 1000;

export interface ImageServiceOptions {
  /** The state root: blobs go to `<root>/content`, unpacked layers to `<root>/snapshots`. */
  readonly root: string;
  readonly host: HostPaths;
  /** How layers are unpacked; default: overlay when the kernel has it (see defaultSnapshotMode). */
  readonly mode?: SnapshotMode;
}

/**
 * The image library over one state root: the image tables (`records`, in the state store the caller
 * opened and closes), `<root>/content` and `<root>/snapshots`. Built by the composition root
 * (src/root.ts); constructing one clears snapshots an interrupted unpack left behind.
 */
export class ImageService {
  readonly content: ContentStore;
  readonly snapshots: Snapshotter;

  /** Where a load unpacks its archive: `<root>/tmp`, on the store's own filesystem. */
  private readonly tmpDir: string;

  constructor(readonly records: ImageRecords, o: ImageServiceOptions) {
    this.tmpDir = path.join(o.root, 'tmp');
    this.content = new ContentStore(path.join(o.root, 'content'));
    this.snapshots = new Snapshotter(path.join(o.root, 'snapshots'), o.mode ?? defaultSnapshotMode(readHostText(o.host, '/proc/filesystems')));
    this.snapshots.clearUnfinished();
  }

  async pull(client: RegistryApi, req: PullRequest): Promise<PullResult> {
    // Loaded on demand: listing, inspecting or running a local image never needs the pull machinery.
    const { pullImage } = await import('./pull/pull.js');
    return pullImage({ client, content: this.content, snapshots: this.snapshots, records: this.records }, req);
  }

  list(): ImageRecord[] {
    return this.records.list();
  }

  /** berth save: `refs` as one tar on `out` (image/archive/save.ts: an OCI layout, plus docker-archive's files for `docker`). */
  async save(refs: readonly string[], format: ArchiveFormat, out: Writable): Promise<void> {
    const { saveImages } = await import('./archive/save.js');
    return saveImages(this, refs, format, out);
  }

  /**
   * berth load: every image of an OCI layout or docker-archive tar, each read by the puller from the
   * archive as from a registry (digests verified, a multi-platform index resolved to the first of
   * `platforms` it has and kept). Returns the names loaded, in the archive's order.
   */
  async load(archive: Readable, platforms: readonly Platform[]): Promise<string[]> {
    const { unpackArchive, workDir } = await import('./archive/load.js');
    const work = workDir(this.tmpDir);
    try {
      await unpackArchive(archive, work.dir);
      return await this.loadLayout(work.dir, platforms);
    } finally {
      work.remove();
    }
  }

  /**
   * berth load from an archive already unpacked in `dir` (a preloaded card's OCI layout,
   * src/agent/preload.ts): the same verification and records as {@link load}; `dir` is only read.
   * Loading an image already present changes nothing, so an interrupted load can simply run again.
   */
  async loadLayout(dir: string, platforms: readonly Platform[]): Promise<string[]> {
    const { archivedImages } = await import('./archive/load.js');
    const names: string[] = [];
    for (const image of await archivedImages(dir)) {
      await this.pull(image.source, { reference: image.name, platforms, parallel: 1 });
      names.push(image.name);
    }
    return names;
  }

  /** Finds an image by reference (`busybox`, `host:5000/app:1`) or by manifest digest or its prefix. */
  find(nameOrDigest: string): ImageRecord {
    const hex = /^(sha256:)?([a-f0-9]{6,64})$/.exec(nameOrDigest);
    if (hex) {
      const matches = this.records.byDigestPrefix(`sha256:${hex[2]}`);
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1 && new Set(matches.map((m) => m.manifestDigest)).size === 1) return matches[0]!;
      if (matches.length > 1) throw new BerthError('conflict', `"${nameOrDigest}" matches several images: ${matches.map((m) => m.name).join(', ')}`);
    }
    let name: string;
    try {
      name = formatReference(parseReference(nameOrDigest));
    } catch {
      throw new BerthError('notFound', `no such image: ${nameOrDigest}`);
    }
    const image = this.records.get(name);
    if (!image) throw new BerthError('notFound', `no such image: ${nameOrDigest}`, { hint: `berth pull ${nameOrDigest}` });
    return image;
  }

  /** The image's config (entrypoint, env, user …): what a container needs, without the manifest and layer ids inspect adds. */
  config(nameOrDigest: string): ImageConfig {
    const image = this.find(nameOrDigest);
    return this.configOf(image);
  }

  private configOf(image: ImageRecord): ImageConfig {
    return parseConfigBytes(this.content.read(image.configDigest), `config of ${image.name}`);
  }

  inspect(nameOrDigest: string): ImageInspect {
    const image = this.find(nameOrDigest);
    const parsed = parseManifestBytes(this.content.read(image.manifestDigest), undefined, `manifest of ${image.name}`);
    if (parsed.kind !== 'manifest') throw new BerthError('internal', `${image.manifestDigest} is not a manifest`);
    const config = this.configOf(image);
    const chain = chainIds(config.rootfs.diff_ids);
    return {
      name: image.name,
      repository: image.repository,
      platform: image.platform,
      manifestDigest: image.manifestDigest,
      ...(image.indexDigest && { indexDigest: image.indexDigest }),
      configDigest: image.configDigest,
      size: image.size,
      pulledAt: new Date(image.pulledAt).toISOString(),
      snapshotMode: this.snapshots.mode,
      layers: parsed.manifest.layers.map((l, i) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, diffId: config.rootfs.diff_ids[i]!, chainId: chain[i]! })),
      config,
    };
  }

  /** docker tag: `target` (a tag, not a digest) names the same image as `source` from now on. Returns the canonical new name. */
  tag(source: string, target: string): string {
    const image = this.find(source);
    const ref = parseReference(target);
    if (ref.digest !== undefined) throw new BerthError('invalid', `cannot tag with a digest: "${target}" (a digest is the content's own name)`);
    const name = formatReference(ref);
    if (name !== image.name) this.records.tag(image.name, name, repositoryName(ref));
    return name;
  }

  /** Removes an image and whatever of its blobs and snapshots no other image uses. */
  remove(nameOrDigest: string): { name: string } & PruneResult {
    const image = this.find(nameOrDigest);
    this.records.remove(image.name);
    return { name: image.name, ...this.collect(false) };
  }

  /** Removes every blob and snapshot no image references, and stale partial downloads. */
  prune(): PruneResult {
    return this.collect(true);
  }

  private collect(partials: boolean): PruneResult {
    const { blobs, snapshots } = this.records.referenced();
    let bytes = 0;
    let nBlobs = 0;
    let nSnapshots = 0;
    let nPartials = 0;
    for (const digest of this.content.list()) {
      if (blobs.has(digest)) continue;
      bytes += this.content.size(digest) ?? 0;
      if (this.content.delete(digest)) nBlobs++;
    }
    for (const chainId of this.snapshots.list()) {
      if (snapshots.has(chainId)) continue;
      if (this.snapshots.remove(chainId)) nSnapshots++;
      this.records.forgetSnapshot(chainId);
    }
    if (partials) {
      for (const p of this.content.partials()) {
        if (Date.now() - p.mtimeMs < PARTIAL_GRACE_MS) continue;
        // A pull still writing it (stalled past the grace time) keeps it.
        if (!this.content.removePartial(p.file)) continue;
        bytes += p.size;
        nPartials++;
      }
    }
    return { blobs: nBlobs, snapshots: nSnapshots, partials: nPartials, bytes };
  }
}
