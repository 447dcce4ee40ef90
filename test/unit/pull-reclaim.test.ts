import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { bufferReclaimer } from '../../src/image/pull/reclaim.js';

// A pull's dead chunk buffers are freed every few MiB (src/image/pull/reclaim.ts), not when V8's
// external-memory limit (64 MiB) or a full young generation finally triggers a collection.

type Gc = (options?: { type?: 'minor' | 'major' }) => void;

describe('bufferReclaimer', () => {
  it('collects once per everyBytes of data, counting across chunks of any size', () => {
    const calls: unknown[] = [];
    const reclaim = bufferReclaimer(1000, (o) => calls.push(o));
    for (const n of [300, 300, 300]) reclaim(n);
    expect(calls).toHaveLength(0);
    reclaim(100); // 1000 reached
    expect(calls).toEqual([{ type: 'minor' }]);
    reclaim(2500); // one chunk larger than the period: one collection, the count starts over
    expect(calls).toHaveLength(2);
    reclaim(999);
    expect(calls).toHaveLength(2);
  });

  it('makes every fullEvery-th collection a full one: plain gc(), no options', () => {
    const calls: unknown[] = [];
    const reclaim = bufferReclaimer(1000, (o) => calls.push(o ?? 'full'), 3000);
    for (let i = 0; i < 6; i++) reclaim(1000);
    expect(calls).toEqual([{ type: 'minor' }, { type: 'minor' }, 'full', { type: 'minor' }, { type: 'minor' }, 'full']);
  });

  it('does nothing without an exposed gc (node started without --expose-gc)', () => {
    expect(() => bufferReclaimer(1, undefined)(10)).not.toThrow();
  });

  it('keeps dead 64 KiB chunks from piling up: 64 MiB streamed, under 16 MiB of buffers alive at any time', () => {
    // The real collector: the same V8 minor GC bin/berth's --expose-gc gives the pull.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as Gc;
    gc({ type: 'major' });
    const base = process.memoryUsage().arrayBuffers;
    const reclaim = bufferReclaimer(4 * 1024 * 1024, gc);
    let peak = 0;
    let sink = 0;
    for (let i = 0; i < 1024; i++) {
      const chunk = Buffer.allocUnsafeSlow(64 * 1024); // as a socket read or a gunzip output chunk
      chunk[0] = i;
      sink += chunk[0]!;
      reclaim(chunk.length);
      if (i % 16 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
    }
    expect(sink).toBeGreaterThan(0);
    expect(peak).toBeLessThan(16 * 1024 * 1024);
  });

  it('frees chunks a scavenge promoted: chunks queued across collections, 128 MiB streamed, under 16 MiB alive', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as Gc;
    // Each chunk stays queued (as in a stream's buffer) while 24 more arrive, so it lives through
    // scavenges and is promoted; minor collections alone never free it (62 MiB alive, measured).
    const stream = (reclaim: (n: number) => void): number => {
      gc();
      const base = process.memoryUsage().arrayBuffers;
      const queue: Buffer[] = [];
      let peak = 0;
      for (let i = 0; i < 2048; i++) {
        queue.push(Buffer.allocUnsafeSlow(64 * 1024));
        if (queue.length > 24) queue.shift();
        reclaim(64 * 1024);
        if (i % 16 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
      }
      return peak;
    };
    const MiB = 1024 * 1024;
    expect(stream(bufferReclaimer(MiB, gc, 8 * MiB))).toBeLessThan(16 * MiB);
    // The same with minor collections only: what the full one is there for.
    expect(stream(bufferReclaimer(MiB, gc, Number.POSITIVE_INFINITY))).toBeGreaterThan(24 * MiB);
  });
});
