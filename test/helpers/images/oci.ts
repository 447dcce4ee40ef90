// Small OCI/Docker image vocabulary for the test image builder: media types, digests, descriptors.
import { createHash } from 'node:crypto';
import { pack as tarPack, type Header } from 'tar-stream';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Accept header that asks a registry for any of the four manifest kinds. */
export const MANIFEST_ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(', ');

export type Compression = 'gzip' | 'none';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
}

/** The media types of one flavour (OCI or Docker schema 2) of image. */
export function mediaTypes(docker: boolean, compression: Compression): { index: string; manifest: string; config: string; layer: string } {
  if (docker) {
    return { index: MT.dockerList, manifest: MT.dockerManifest, config: MT.dockerConfig, layer: compression === 'gzip' ? MT.dockerLayerGzip : MT.dockerLayerTar };
  }
  return { index: MT.ociIndex, manifest: MT.ociManifest, config: MT.ociConfig, layer: compression === 'gzip' ? MT.ociLayerGzip : MT.ociLayerTar };
}

export const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A blob ready to push: its bytes and its descriptor. */
export interface Blob {
  bytes: Buffer;
  desc: Descriptor;
}

export function blobOf(bytes: Buffer, mediaType: string): Blob {
  return { bytes, desc: { mediaType, digest: sha256(bytes), size: bytes.length } };
}

/** JSON documents are serialized once and pushed as exactly these bytes, so digests are what we computed. */
export function jsonBlob(doc: unknown, mediaType: string): Blob {
  return blobOf(Buffer.from(JSON.stringify(doc)), mediaType);
}

/** "linux/arm/v7" */
export const platformString = (p: Platform): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/** Fixed timestamp for configs and history so builds are reproducible. */
export const EPOCH = '1970-01-01T00:00:00Z';

// tarOf: tar-stream's pack with the knobs hostile-layer tests need, and nothing normalized.

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';

export interface TarEntrySpec {
  /** Written verbatim: '../evil', '/abs', '.', './' all stay as given (no trailing '/' added to dirs). */
  name: string;
  type?: TarEntryType;
  /** File body (type 'file' only). */
  content?: Buffer | string;
  /** Permission bits incl. setuid/sticky; default 0644 (files) or 0755 (dirs). 0 is kept as 0. */
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Seconds since the epoch; default 0 so layers are reproducible. */
  mtime?: number;
  /** Target of a symlink, or the earlier entry a hardlink ('link') points at. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extra PAX records, e.g. { 'SCHILY.xattr.user.test': 'x' }; forces a PAX header. */
  pax?: Record<string, string>;
}

// S_IFMT bits per type: tar-stream treats mode 0 as "unset" and substitutes 0644, but it masks the
// mode with 07777 when encoding, so OR-ing the type bits in keeps an explicit 0 intact.
const IFMT: Record<TarEntryType, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  link: 0o100000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
};

/** Packs entries in the given order (callers sort when they want determinism) into an uncompressed tar. */
export async function tarOf(entries: TarEntrySpec[]): Promise<Buffer> {
  const pack = tarPack();
  const errors: Error[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header: Partial<Header> & { name: string } = {
      name: e.name,
      type,
      mode: (e.mode ?? (type === 'directory' ? 0o755 : 0o644)) | IFMT[type],
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date((e.mtime ?? 0) * 1000),
    };
    if (e.uname !== undefined) header.uname = e.uname;
    if (e.gname !== undefined) header.gname = e.gname;
    if (e.linkname !== undefined) header.linkname = e.linkname;
    if (e.devmajor !== undefined) header.devmajor = e.devmajor;
    if (e.devminor !== undefined) header.devminor = e.devminor;
    if (e.pax) header.pax = e.pax;
    const body = type === 'file' ? Buffer.from(e.content ?? '') : undefined;
    if (body === undefined && e.content !== undefined) throw new Error(`tarOf: ${type} entry ${e.name} cannot have content`);
    const done = (err?: Error | null): void => void (err && errors.push(err));
    if (body) pack.entry(header, body, done);
    else pack.entry(header, done);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  if (errors.length) throw errors[0];
  return Buffer.concat(chunks);
}

/**
 * A PAX extended header (typeflag 'x') whose values are raw bytes, to put in front of the entry it
 * describes. tarOf's `pax` goes through tar-stream, which writes values as UTF-8 strings; a real docker
 * layer carries binary xattr values (security.capability is a binary struct) as they are.
 */
export function rawPaxHeader(name: string, records: Record<string, Buffer>): Buffer {
  const record = (key: string, value: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return Buffer.concat([Buffer.from(String(len)), body]);
  };
  const paxBody = Buffer.concat(Object.entries(records).map(([k, v]) => record(k, v)));
  const header = Buffer.alloc(512);
  const put = (text: string, at: number): number => header.write(text, at, 'latin1');
  put(name, 0);
  put('0000644\0', 100);
  put('0000000\0', 108);
  put('0000000\0', 116);
  put(`${paxBody.length.toString(8).padStart(11, '0')}\0`, 124);
  put('00000000000\0', 136);
  put('        ', 148);
  put('x', 156);
  put('ustar\0', 257);
  put('00', 263);
  put(`${header.reduce((a, b) => a + b, 0).toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([header, paxBody, Buffer.alloc((512 - (paxBody.length % 512)) % 512)]);
}
