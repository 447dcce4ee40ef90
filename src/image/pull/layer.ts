import crypto from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '../../errors.js';
import type { ContentStore, Ingest } from '../content/store.js';
import { parseDigest } from '../digest.js';
import type { Descriptor } from '../manifest.js';
import type { RegistryApi } from '../registry/types.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { applyLayer, type WhiteoutMode } from '../unpack/apply.js';
import { decompress } from '../unpack/decompress.js';
import type { Reclaim } from './reclaim.js';

export interface LayerJob {
  readonly repository: string;
  readonly descriptor: Descriptor;
  readonly diffId: string;
  readonly chainId: string;
  readonly parent: string | undefined;
}

export interface LayerContext {
  readonly client: RegistryApi;
  readonly content: ContentStore;
  readonly snapshots: Snapshotter;
  readonly signal: AbortSignal;
  /** Bytes of this layer's blob received so far (including resumed ones). */
  readonly onBytes: (bytes: number) => void;
  readonly onRetry: (attempt: number, delayMs: number, reason: string) => void;
  readonly onWarning: (message: string) => void;
  /** Attempts without progress before a dropped download gives up. */
  readonly resumeAttempts?: number;
  /** Told the size of every uncompressed chunk, to free dead chunks as the pull goes (reclaim.ts). */
  readonly reclaim?: Reclaim;
}

/**
 * Brings one layer's snapshot into existence: streams the blob (from the store, or from the registry
 * while writing it to the store) through decompression into the snapshot directory. The snapshot is
 * published only after both the blob digest and the uncompressed diff_id check out.
 */
export async function fetchAndUnpackLayer(ctx: LayerContext, job: LayerJob): Promise<{ unpackedBytes: number }> {
  const prepared = ctx.snapshots.prepare(job.chainId, job.parent);
  let ingest: Ingest | undefined;
  try {
    let source: AsyncIterable<Buffer>;
    if (ctx.content.has(job.descriptor.digest)) {
      source = fs.createReadStream(ctx.content.path(job.descriptor.digest));
      ctx.onBytes(job.descriptor.size);
    } else {
      ingest = await ctx.content.ingest(job.descriptor.digest, job.descriptor.size);
      source = downloadChunks(ctx, job, ingest);
    }
    const { unpacked, diffId } = await unpackStream(source, prepared.dir, prepared.whiteouts, job.diffId, ctx);
    if (diffId !== job.diffId) {
      throw new BerthError('invalid', `layer ${job.descriptor.digest} unpacks to ${diffId}, but the image config says ${job.diffId}`);
    }
    await ingest?.commit();
    prepared.commit();
    return { unpackedBytes: unpacked };
  } catch (err) {
    prepared.abort();
    // Keep a partial only for what a later pull can finish: a dropped connection, a cancel. Corrupt or
    // hostile bytes would fail the same way on every resume.
    if (err instanceof BerthError && err.category === 'invalid') await ingest?.discard();
    else await ingest?.close();
    if (ctx.signal.aborted) throw new BerthError('cancelled', 'pull cancelled', { cause: err });
    // Bad bytes are named by the layer they came in (a hostile entry, a corrupt stream, a wrong digest).
    if (err instanceof BerthError && err.category === 'invalid' && !err.message.includes(job.descriptor.digest)) {
      throw new BerthError('invalid', `layer ${job.descriptor.digest}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** What a blob download needs of a layer's context. */
export type DownloadContext = Pick<LayerContext, 'client' | 'signal' | 'onBytes' | 'onRetry' | 'resumeAttempts'>;

/**
 * The blob's bytes from offset 0: first what an interrupted earlier pull left in the ingest, then the
 * rest from the registry, written to the ingest before they are passed on. A connection dropped
 * mid-body is resumed with a Range request; attempts reset whenever bytes arrive. Also the agent's
 * bundle download (src/agent/upgrade/fetch.ts).
 */
export async function* downloadChunks(ctx: DownloadContext, job: Pick<LayerJob, 'repository' | 'descriptor'>, ingest: Ingest): AsyncGenerator<Buffer> {
  const { digest, size } = job.descriptor;
  const resumedFrom = ingest.offset;
  for await (const chunk of ingest.replay(resumedFrom)) yield chunk as Buffer;
  ctx.onBytes(resumedFrom);
  let failures = 0;
  const maxFailures = ctx.resumeAttempts ?? 5;
  while (ingest.offset < size) {
    const before = ingest.offset;
    try {
      const { stream } = await ctx.client.openBlob(job.repository, digest, ingest.offset, ctx.signal);
      for await (const chunk of stream) {
        ingest.write(chunk as Buffer);
        ctx.onBytes(ingest.offset);
        yield chunk as Buffer;
      }
      if (ingest.offset < size) throw new Error(`connection closed after ${ingest.offset} of ${size} bytes`);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      if (err instanceof BerthError && err.category !== 'network') throw err;
      failures = ingest.offset > before ? 1 : failures + 1;
      if (failures > maxFailures) {
        throw new BerthError('network', `download of ${digest} failed ${failures} times in a row at byte ${ingest.offset}: ${(err as Error).message}`, { cause: err });
      }
      const delayMs = Math.min(30_000, 500 * 2 ** (failures - 1));
      ctx.onRetry(failures, delayMs, (err as Error).message);
      await sleep(delayMs, undefined, { signal: ctx.signal });
    }
  }
}

/** Decompresses (decompress.ts), hashes the tar, applies it. */
async function unpackStream(
  source: AsyncIterable<Buffer>,
  dir: string,
  whiteouts: WhiteoutMode,
  expectedDiffId: string,
  ctx: LayerContext,
): Promise<{ unpacked: number; diffId: string }> {
  const hash = crypto.createHash(parseDigest(expectedDiffId).algorithm);
  // The tar reader consumes its input to the end (padding after the end-of-archive marker included), so
  // by the time it is done the hash covers the whole uncompressed stream.
  const result = await applyLayer(hashed(decompress(source), hash, ctx.reclaim), dir, { whiteouts, signal: ctx.signal, onWarning: ctx.onWarning });
  return { unpacked: result.bytes, diffId: `${parseDigest(expectedDiffId).algorithm}:${hash.digest('hex')}` };
}

/**
 * Hashes each chunk on its way to the tar reader. A generator rather than a Transform stage: no buffer of
 * its own, so a chunk is parsed, written and done with before the next is decompressed (into the same
 * output buffer: decompress.ts).
 */
async function* hashed(source: AsyncIterable<Buffer>, hash: crypto.Hash, reclaim: Reclaim | undefined): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hash.update(chunk);
    reclaim?.(chunk.length);
    yield chunk;
  }
}
