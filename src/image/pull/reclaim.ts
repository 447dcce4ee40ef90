/**
 * Keeps a pull's resident memory flat: returns the Buffers that streamed data leaves behind to the
 * allocator as the pull goes instead of letting them pile up.
 *
 * Why: a chunk of a layer (a 64 KiB socket read, a 128 KiB gunzip output) is a Buffer whose bytes live
 * outside V8's heap, while its JS object is a few dozen bytes in the young generation. V8 collects the
 * young generation when *JS* allocation fills it (1 MiB with bin/berth's --max-semi-space-size=1), which
 * a stream reaches only every ~400 chunks: ~27 MiB of dead chunks wait for it, and the 64 MiB external
 * memory limit is the only other trigger. So:
 * - a young-generation collection (a scavenge, well under a millisecond for a small heap) every MiB frees
 *   the chunks that died young;
 * - a full collection every 16 MiB frees those a scavenge promoted (a chunk still queued in a stream
 *   when two scavenges ran). Without it they wait in the old generation for V8's own, rare, full GC:
 *   on the realistic image ~23 MiB of dead gunzip outputs and HTTP body copies at the peak, which glibc
 *   then keeps as a 27 MiB [heap] (heaptrack, smaps). It must be the plain `gc()`: measured side by side
 *   in one process, `gc({ type: 'major' })` every 20 ms left as much behind as no collection at all,
 *   `gc()` every 20 ms nearly nothing.
 * Measured with scripts/bench/pull.mjs (BENCHMARKS.md "Pull memory", "Third pass").
 *
 * Needs node's `--expose-gc` (bin/berth passes it); without it this does nothing and costs nothing.
 */
export type Reclaim = (bytes: number) => void;

/** V8's `gc` as --expose-gc installs it: no argument is a full, synchronous collection. */
type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

const MiB = 1024 * 1024;

/**
 * Every `minorEvery` bytes of data passed through it a minor GC, every `fullEvery` bytes a full one
 * instead (when the runtime exposes `gc`). `fullEvery` is rounded up to a multiple of `minorEvery`.
 */
export function bufferReclaimer(minorEvery = MiB, gc = (globalThis as { gc?: Gc }).gc, fullEvery = 16 * MiB): Reclaim {
  if (typeof gc !== 'function') return () => undefined;
  let since = 0;
  let collections = 0;
  const perFull = Math.max(1, Math.ceil(fullEvery / minorEvery));
  return (bytes) => {
    since += bytes;
    if (since < minorEvery) return;
    since = 0;
    collections++;
    if (collections % perFull === 0) gc();
    else gc({ type: 'minor' });
  };
}
