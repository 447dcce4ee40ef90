import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError } from '../../errors.js';
import { MEDIA, parseManifestBytes, type Descriptor } from '../manifest.js';
import { parsePlatform } from '../platform.js';
import { parseReference } from '../reference.js';
import type { ImageService } from '../service.js';
import {
  ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, blobPath, DOCKER_MANIFEST_FILE, INDEX_FILE, OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION, REPOSITORIES_FILE,
  type ArchiveFormat, type DockerArchiveEntry,
} from './format.js';

/** docker's short name for a reference: `busybox:latest` for docker.io/library/busybox:latest, the full name otherwise. */
function dockerName(name: string): { repo: string; tag: string } {
  const ref = parseReference(name);
  const repo = ref.registry === 'docker.io' ? ref.repository.replace(/^library\//, '') : `${ref.registry}/${ref.repository}`;
  return { repo, tag: ref.tag ?? 'latest' };
}

/**
 * Writes `refs` as one tar to `out`: an OCI image layout whose index.json names each image (its
 * platform manifest: berth keeps one platform per name), and, for `docker`, docker-archive's
 * manifest.json and repositories over the same blobs. Blobs are copied as stored (layers stay
 * compressed; their digests are the manifest's), each once however many images share it.
 */
export async function saveImages(images: ImageService, refs: readonly string[], format: ArchiveFormat, out: Writable): Promise<void> {
  if (refs.length === 0) throw new BerthError('usage', 'save needs at least one image');
  const found = refs.map((r) => images.find(r));
  const pack = tar.pack();
  const done = pipeline(pack, out);
  const written = new Set<string>();
  const addBlob = async (digest: string): Promise<void> => {
    if (written.has(digest)) return;
    written.add(digest);
    const file = images.content.path(digest);
    const size = fs.statSync(file).size;
    const entry = pack.entry({ name: blobPath(digest), size, mode: 0o644, mtime: new Date(0) });
    await pipeline(fs.createReadStream(file), entry);
  };
  const small = (name: string, text: string): void => void pack.entry({ name, mode: 0o644, mtime: new Date(0) }, text);
  const manifests: Descriptor[] = [];
  const dockerEntries: DockerArchiveEntry[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  try {
    small(OCI_LAYOUT_FILE, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    for (const image of found) {
      const bytes = images.content.read(image.manifestDigest);
      const parsed = parseManifestBytes(bytes, undefined, `manifest of ${image.name}`);
      if (parsed.kind !== 'manifest') throw new BerthError('internal', `${image.manifestDigest} is not a manifest`);
      const { manifest } = parsed;
      for (const d of [manifest.config, ...manifest.layers]) await addBlob(d.digest);
      await addBlob(image.manifestDigest);
      const p = parsePlatform(image.platform);
      const { repo, tag } = dockerName(image.name);
      manifests.push({
        mediaType: parsed.mediaType || MEDIA.ociManifest, digest: image.manifestDigest, size: bytes.length,
        platform: { os: p.os, architecture: p.architecture, ...(p.variant !== undefined && { variant: p.variant }) },
        annotations: { [ANNOTATION_IMAGE_NAME]: image.name, [ANNOTATION_REF_NAME]: tag },
      });
      dockerEntries.push({ Config: blobPath(manifest.config.digest), RepoTags: [`${repo}:${tag}`], Layers: manifest.layers.map((l) => blobPath(l.digest)) });
      (repositories[repo] ??= {})[tag] = manifest.layers.at(-1)?.digest.replace(/^sha256:/, '') ?? '';
    }
    small(INDEX_FILE, JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests }));
    if (format === 'docker') {
      small(DOCKER_MANIFEST_FILE, JSON.stringify(dockerEntries));
      small(REPOSITORIES_FILE, JSON.stringify(repositories));
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  await done;
}
