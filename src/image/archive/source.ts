import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { BerthError } from '../../errors.js';
import { parseDigest, verifyBytes } from '../digest.js';
import type { RegistryApi } from '../registry/types.js';

/** Where an archive's blob is: a file of the unpacked archive, or bytes berth made (a legacy archive's manifest). */
export type BlobLocation = { readonly file: string } | { readonly bytes: Buffer };

/**
 * One image of an unpacked archive, served to the puller as a registry would serve it (the same
 * contract, RegistryApi): `top` is what its tag resolves to (a manifest or a multi-platform index),
 * every other blob is looked up by digest. The puller then verifies, unpacks and records exactly as for
 * a pull, so a loaded image is indistinguishable from a pulled one and a tampered blob fails the same
 * verification, named by its digest.
 */
export class ArchiveSource implements RegistryApi {
  readonly registry = 'archive';

  constructor(private readonly blob: (digest: string) => BlobLocation | undefined, private readonly top: string, private readonly what: string) {}

  private locate(digest: string): BlobLocation {
    parseDigest(digest);
    const at = this.blob(digest);
    if (!at) throw new BerthError('invalid', `${this.what}: blob ${digest} is missing from the archive`);
    return at;
  }

  async getManifest(_repository: string, reference: string): Promise<{ bytes: Buffer; contentType: string | undefined; digest: string }> {
    const digest = reference.includes(':') ? reference : this.top;
    const at = this.locate(digest);
    const bytes = 'bytes' in at ? at.bytes : fs.readFileSync(at.file);
    verifyBytes(bytes, digest, undefined, `${this.what}: manifest ${digest}`);
    return { bytes, contentType: undefined, digest };
  }

  async openBlob(_repository: string, digest: string, offset: number): Promise<{ stream: Readable; totalSize: number | undefined }> {
    const at = this.locate(digest);
    if ('bytes' in at) {
      const { Readable } = await import('node:stream');
      return { stream: Readable.from([at.bytes.subarray(offset)]), totalSize: at.bytes.length };
    }
    return { stream: fs.createReadStream(at.file, { start: offset }), totalSize: fs.statSync(at.file).size };
  }
}
