import { BerthError } from '../errors.js';
import validateConfig from '../generated/oci-config.validate.js';
import validateIndex from '../generated/oci-index.validate.js';
import validateManifest from '../generated/oci-manifest.validate.js';
import { formatPlatform, normalizeArch, type Platform } from './platform.js';
import { parseJson } from '../config/parse.js';
import { validateWith } from '../config/schema.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

/** What berth asks registries for, in the Accept header. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest];

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: { architecture: string; os: string; variant?: string };
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
}

export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

export interface ImageConfig {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly created?: string;
  readonly config?: {
    User?: string;
    Env?: string[] | null;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
  };
  readonly rootfs: { type: 'layers'; diff_ids: string[] };
}

export type Fetched = { kind: 'index'; index: ImageIndex; mediaType: string } | { kind: 'manifest'; manifest: ImageManifest; mediaType: string };

const INDEX_TYPES = new Set<string>([MEDIA.ociIndex, MEDIA.dockerList]);
const MANIFEST_TYPES = new Set<string>([MEDIA.ociManifest, MEDIA.dockerManifest]);

/**
 * Parses a manifest or index. The kind comes from the body's `mediaType` when present; a Content-Type
 * that contradicts it is an error (REFERENCE §2), as is a type berth does not know.
 */
export function parseManifestBytes(bytes: Uint8Array, contentType: string | undefined, what: string): Fetched {
  const json = parseJson(bytes, what) as { mediaType?: unknown; manifests?: unknown };
  const bodyType = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const headerType = contentType?.split(';')[0]?.trim();
  if (bodyType !== undefined && headerType !== undefined && headerType !== '' && headerType !== bodyType && headerType !== 'application/json') {
    throw new BerthError('invalid', `${what}: Content-Type ${headerType} does not match the manifest's mediaType ${bodyType}`);
  }
  const mediaType = bodyType ?? headerType ?? (Array.isArray(json.manifests) ? MEDIA.ociIndex : MEDIA.ociManifest);
  if (INDEX_TYPES.has(mediaType)) return { kind: 'index', index: validateWith<ImageIndex>(validateIndex, json, what), mediaType };
  if (MANIFEST_TYPES.has(mediaType)) return { kind: 'manifest', manifest: validateWith<ImageManifest>(validateManifest, json, what), mediaType };
  throw new BerthError('invalid', `${what}: unsupported media type ${mediaType} (schema 1 and artifacts are not images berth can run)`);
}

export function parseConfigBytes(bytes: Uint8Array, what: string): ImageConfig {
  const config = validateWith<ImageConfig>(validateConfig, parseJson(bytes, what), what);
  return config;
}

export function descriptorPlatform(d: Descriptor): Platform | undefined {
  if (!d.platform) return undefined;
  return { os: d.platform.os.toLowerCase(), ...normalizeArch(d.platform.architecture, d.platform.variant) };
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/**
 * containerd's selection: keep the entries matching one of the preferences, stable-sort them by preference,
 * take the first. Entries without a platform are not taken (they are attestations or unknown artifacts).
 * No match is a `notFound` error that lists what the index offers.
 */
export function selectFromIndex(index: ImageIndex, preferences: readonly Platform[], what: string): { descriptor: Descriptor; platform: Platform } {
  let best: { descriptor: Descriptor; platform: Platform; rank: number } | undefined;
  for (const d of index.manifests) {
    if (!MANIFEST_TYPES.has(d.mediaType)) continue;
    const p = descriptorPlatform(d);
    if (!p) continue;
    const rank = preferences.findIndex((pref) => samePlatform(pref, p));
    if (rank >= 0 && (best === undefined || rank < best.rank)) best = { descriptor: d, platform: p, rank };
  }
  if (best) return { descriptor: best.descriptor, platform: best.platform };
  const offered = index.manifests.map(descriptorPlatform).filter((p): p is Platform => p !== undefined && p.architecture !== 'unknown');
  throw new BerthError('notFound', `${what} has no variant for ${preferences.map(formatPlatform).join(', ')}; it offers: ${offered.map(formatPlatform).join(', ') || 'none'}`, {
    hint: 'choose another image or tag, or pass --platform if this board can run one of the offered platforms (binfmt/QEMU)',
  });
}
