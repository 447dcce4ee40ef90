/**
 * Keeps a pull's resident memory flat: returns the Buffers that streamed data leaves behind to the
 * allocator every few MiB instead of letting them pile up.
 *
 * Why: a chunk of a layer (a 64 KiB socket read, a 128 KiB gunzip output) is a Buffer whose bytes live
 * outside V8's heap, while its JS object is a few dozen bytes in the young generation. V8 collects the
 * young generation when *JS* allocation fills it (1 MiB with bin/berth's --max-semi-space-size=1), which
 * a stream reaches only every ~400 chunks: ~27 MiB of dead chunks wait for it, and the 64 MiB external
 * memory limit is the only other trigger. A young-generation collection (a scavenge, about a millisecond
 * for a small heap) every few MiB frees them as they die. Measured with scripts/bench/pull.mjs (see
 * BENCHMARKS.md "Pull memory").
 *
 * Needs node's `--expose-gc` (bin/berth passes it); without it this does nothing and costs nothing.
 */
export type Reclaim = (bytes: number) => void;

type Gc = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

/** Every `everyBytes` of data passed through it, one minor GC (when the runtime exposes one). */
export function bufferReclaimer(everyBytes = 4 * 1024 * 1024, gc = (globalThis as { gc?: Gc }).gc): Reclaim {
  if (typeof gc !== 'function') return () => undefined;
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < everyBytes) return;
    since = 0;
    gc({ type: 'minor' });
  };
}
