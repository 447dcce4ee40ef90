import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.js';
import { resolveInRoot } from '../../runtime/spec/user.js';
import { digestOf } from '../digest.js';
import { MEDIA, type Descriptor, type ImageIndex } from '../manifest.js';
import { formatReference, parseReference } from '../reference.js';
import { applyLayer } from '../unpack/apply.js';
import { sniffCompression } from '../unpack/decompress.js';
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, blobPath, DOCKER_MANIFEST_FILE, INDEX_FILE, type DockerArchiveEntry } from './format.js';
import { ArchiveSource, type BlobLocation } from './source.js';

/** One image an archive holds: the name to record it under and where the puller reads it from. */
export interface ArchivedImage {
  readonly name: string;
  readonly source: ArchiveSource;
}

/**
 * Unpacks an archive tar into `dir` with the layer unpacker (no `..`, never writing through a
 * symlink, owned by this user), so the archive's paths are only ever read inside `dir`.
 */
export async function unpackArchive(archive: Readable, dir: string): Promise<void> {
  await applyLayer(archive, dir, { whiteouts: 'none', owner: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } });
}

/** A regular file of the unpacked archive (symlinks resolved inside it), or undefined. */
function fileIn(dir: string, name: string): string | undefined {
  const p = resolveInRoot(dir, name);
  return p !== undefined && fs.existsSync(p) && fs.statSync(p).isFile() ? p : undefined;
}

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    throw new BerthError('invalid', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** A name from index.json annotations: containerd's full name, else an OCI ref name that is a full reference (not a bare tag). */
function annotatedName(d: Descriptor): string | undefined {
  const full = d.annotations?.[ANNOTATION_IMAGE_NAME];
  if (full) return formatReference(parseReference(full));
  const ref = d.annotations?.[ANNOTATION_REF_NAME];
  return ref && /[/:]/.test(ref) ? formatReference(parseReference(ref)) : undefined;
}

async function fileDigest(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

const LAYER_MEDIA_TYPE = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
} as const;
/** By the same magic numbers the puller decompresses by (decompress.ts), so the two cannot disagree. */
function layerMediaType(file: string): string {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(4);
  fs.readSync(fd, head, 0, 4, 0);
  fs.closeSync(fd);
  return LAYER_MEDIA_TYPE[sniffCompression(head)];
}

/**
 * The images of an unpacked archive. An OCI layout (index.json, docker ≥ 25's tars included) is read
 * through its index: each entry named by its annotations, or by docker's manifest.json beside it, a
 * multi-platform index kept as it is (the puller picks the board's platform and records the index).
 * A legacy docker-archive (manifest.json alone) gets an OCI manifest made for it from its config and
 * layer files; its layers are then verified against the config's diff_ids as they are unpacked.
 */
export async function archivedImages(dir: string): Promise<ArchivedImage[]> {
  const index = fileIn(dir, INDEX_FILE);
  const dockerManifest = fileIn(dir, DOCKER_MANIFEST_FILE);
  const docker = dockerManifest ? readJson<DockerArchiveEntry[]>(dockerManifest, DOCKER_MANIFEST_FILE) : undefined;
  if (index) {
    const layoutBlob = (digest: string): BlobLocation | undefined => {
      const file = fileIn(dir, blobPath(digest));
      return file ? { file } : undefined;
    };
    const out: ArchivedImage[] = [];
    const entries = readJson<ImageIndex>(index, INDEX_FILE).manifests ?? [];
    for (const [i, d] of entries.entries()) {
      const annotated = annotatedName(d);
      // docker's manifest.json, written in the index's order, names entries that carry no full name.
      const fromDocker = docker && docker.length === entries.length ? (docker[i]!.RepoTags ?? []) : [];
      const names = new Set(annotated ? [annotated] : fromDocker.map((t) => formatReference(parseReference(t))));
      if (names.size === 0) throw new BerthError('invalid', `${INDEX_FILE}: image ${d.digest} has no name (no ${ANNOTATION_IMAGE_NAME} annotation, no full ${ANNOTATION_REF_NAME})`, { hint: 'save it with its repository name, e.g. skopeo copy … oci-archive:FILE:REPO:TAG' });
      for (const name of names) out.push({ name, source: new ArchiveSource(layoutBlob, d.digest, name) });
    }
    return out;
  }
  if (!docker) throw new BerthError('invalid', `not an image archive: neither ${INDEX_FILE} (OCI layout) nor ${DOCKER_MANIFEST_FILE} (docker-archive) in it`);
  const out: ArchivedImage[] = [];
  for (const e of docker) {
    const what = `${DOCKER_MANIFEST_FILE} entry ${e.Config}`;
    const configFile = fileIn(dir, e.Config);
    if (!configFile) throw new BerthError('invalid', `${what}: config ${e.Config} is missing from the archive`);
    const configBytes = fs.readFileSync(configFile);
    const blobs = new Map<string, BlobLocation>([[digestOf(configBytes), { bytes: configBytes }]]);
    const layers: Descriptor[] = [];
    for (const l of e.Layers) {
      const file = fileIn(dir, l);
      if (!file) throw new BerthError('invalid', `${what}: layer ${l} is missing from the archive`);
      const digest = await fileDigest(file);
      blobs.set(digest, { file });
      layers.push({ mediaType: layerMediaType(file), digest, size: fs.statSync(file).size });
    }
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, digest: digestOf(configBytes), size: configBytes.length }, layers,
    }));
    const manifestDigest = digestOf(manifest);
    blobs.set(manifestDigest, { bytes: manifest });
    for (const t of e.RepoTags ?? []) {
      const name = formatReference(parseReference(t));
      out.push({ name, source: new ArchiveSource((d) => blobs.get(d), manifestDigest, name) });
    }
  }
  return out;
}

/** A private directory to unpack an archive in, under `parent`, removed by the returned function. */
export function workDir(parent: string): { dir: string; remove: () => void } {
  fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
  const dir = fs.mkdtempSync(path.join(parent, 'load-'));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
