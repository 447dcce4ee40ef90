import type { Readable } from 'node:stream';

/**
 * The registry client contract the puller relies on (distribution-spec). Implementations handle auth
 * (anonymous, Basic, Bearer tokens cached per scope), redirects (never carrying Authorization to another
 * host), and retries with backoff that honour Retry-After, for everything up to the first body byte.
 */
export interface RegistryApi {
  /** The registry as named in references (`docker.io`, `127.0.0.1:5000`). */
  readonly registry: string;

  /**
   * Fetches a manifest or index by tag or digest with the standard Accept list. `digest` is the sha256 of
   * the bytes; when `reference` is a digest the bytes are verified against it (mismatch → `invalid`).
   * A missing manifest → `notFound`.
   */
  getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<{ bytes: Buffer; contentType: string | undefined; digest: string }>;

  /**
   * Opens a blob body starting at byte `offset` (Range: bytes=offset-). When the server ignores the range
   * (200), the first `offset` bytes are discarded so the stream still starts at `offset`. The stream may
   * fail mid-body (dropped connection); the caller resumes by calling again with a larger offset.
   * Blob bytes are not verified here: the caller hashes what it stores.
   */
  openBlob(repository: string, digest: string, offset: number, signal?: AbortSignal): Promise<{ stream: Readable; totalSize: number | undefined }>;
}
