/**
 * The two offline image formats berth writes and reads (issue 19):
 * - OCI image layout (image-spec `image-layout.md`): `oci-layout`, `index.json`, `blobs/<alg>/<hex>`.
 * - docker-archive (`docker save`): `manifest.json` (one entry per image: Config, RepoTags, Layers as
 *   paths in the tar) and `repositories`. Docker ≥ 25 writes both in one tar, the layout's blobs being
 *   the files manifest.json names; berth's default does the same, so docker, podman and skopeo load it.
 *   Older docker writes `<id>/layer.tar` (uncompressed) and `<hex>.json` configs without a layout.
 */

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_LAYOUT_VERSION = '1.0.0';
export const INDEX_FILE = 'index.json';
export const DOCKER_MANIFEST_FILE = 'manifest.json';
export const REPOSITORIES_FILE = 'repositories';

/** Where the layout keeps a blob: `blobs/sha256/<hex>`. */
export const blobPath = (digest: string): string => `blobs/${digest.replace(':', '/')}`;

/** index.json annotations naming an image: containerd's full name, and the OCI ref name (the tag). */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name';
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** One entry of docker-archive's manifest.json. */
export interface DockerArchiveEntry {
  readonly Config: string;
  readonly RepoTags: readonly string[] | null;
  readonly Layers: readonly string[];
}

export type ArchiveFormat = 'docker' | 'oci';
