import { Readable, pipeline, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import { BerthError } from '../../errors.js';

/**
 * A layer's decompression, by magic number (not media type: registries mislabel).
 *
 * Contract: `decompress(source)` yields the uncompressed bytes in order. On the gzip path a yielded Buffer
 * is a view of ONE output buffer that the next step overwrites: the consumer must be done with it (hash
 * it, parse it, write it out) before it asks for the next. applyLayer's synchronous tar reader is.
 *
 * Why one reused output buffer, inflated on the main thread: zlib's stream allocates a fresh output
 * Buffer per `chunkSize` of output. Those Buffers' bytes live outside V8's heap behind a tiny JS object,
 * so they die in bulk only at a GC, and between collections glibc's `[heap]` grew by 10–14 MiB of dead
 * gunzip outputs (BENCHMARKS.md, issue 22). Inflating synchronously through the zlib handle into a fixed
 * buffer allocates nothing per chunk. The same native code runs (Node's own `zlib.*Sync` functions call
 * it the same way), so multi-member gzip, trailing zero padding and every data error behave as before.
 */
export type Compression = 'gzip' | 'zstd' | 'none';

const GZIP = [0x1f, 0x8b, 0x08];
const ZSTD = [0x28, 0xb5, 0x2f, 0xfd];
const startsWith = (b: Buffer, magic: number[]): boolean => magic.every((m, i) => b[i] === m);

export function sniffCompression(head: Buffer): Compression {
  if (startsWith(head, GZIP)) return 'gzip';
  if (startsWith(head, ZSTD)) return 'zstd';
  return 'none';
}

/** Bytes of uncompressed output per step: fewer trips through the hash and the tar reader per megabyte. */
const OUT_SIZE = 128 * 1024;

/** The uncompressed bytes of `source` (see the module's contract on reusing the yielded Buffers). */
export async function* decompress(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  // Enough bytes for the longest magic number, however the source cuts its chunks.
  let head: Buffer = Buffer.alloc(0);
  let ended = false;
  while (head.length < ZSTD.length && !ended) {
    const n = await it.next();
    if (n.done) ended = true;
    else head = head.length === 0 ? n.value : Buffer.concat([head, n.value]);
  }
  if (head.length === 0) return;
  const rest = (async function* () {
    yield head;
    if (!ended) for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
  })();
  const kind = sniffCompression(head);
  if (kind === 'none') {
    yield* rest;
    return;
  }
  const stream = kind === 'gzip' ? zlib.createGunzip() : zstdStream();
  // zstd keeps the stream path: its handle takes ZSTD_e_* flush values, not zlib's, and it is new enough
  // in Node (22.15) that its internals are not to be leaned on.
  const inflater = kind === 'gzip' ? HandleInflater.of(stream) : undefined;
  if (!inflater) {
    // zstd, or a Node whose zlib streams no longer expose their handle: one Buffer per output.
    yield* pipeline(Readable.from(rest), stream, () => undefined) as unknown as AsyncIterable<Buffer>;
    return;
  }
  try {
    for await (const chunk of rest) yield* inflater.step(zlib.constants.Z_NO_FLUSH, chunk);
    // Z_FINISH on no input: a stream cut short is an "unexpected end of file" here.
    yield* inflater.step(zlib.constants.Z_FINISH, EMPTY);
  } finally {
    stream.destroy(); // frees zlib's native state now, not at a GC
  }
}

function zstdStream(): Transform {
  const zstd = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  if (!zstd) throw new BerthError('host', `zstd-compressed layers need Node 22.15 or newer (this is Node ${process.versions.node})`);
  return zstd();
}

const EMPTY = Buffer.alloc(0);

/** What Node's zlib stream objects hold (lib/zlib.js); its synchronous functions use exactly these. */
interface ZlibHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
  onerror: (message: string, errno: number, code?: string) => void;
}
interface ZlibInternals {
  _handle?: ZlibHandle | null;
  /** [avail_out, avail_in] after each write. */
  _writeState?: Uint32Array;
}

/** Drives a zlib handle synchronously into one output buffer. */
class HandleInflater {
  private readonly out = Buffer.allocUnsafe(OUT_SIZE);
  private error: Error | undefined;

  private constructor(
    private readonly handle: ZlibHandle,
    private readonly state: Uint32Array,
  ) {
    // The handle reports a data error through `onerror`, synchronously inside writeSync. The stream's own
    // handler would destroy the stream and emit 'error' on a later tick; here it is thrown at once.
    handle.onerror = (message, errno, code) => {
      this.error = Object.assign(new Error(message), { errno, code });
    };
  }

  static of(stream: Transform): HandleInflater | undefined {
    const { _handle: handle, _writeState: state } = stream as unknown as ZlibInternals;
    if (!handle || typeof handle.writeSync !== 'function' || !(state instanceof Uint32Array)) return undefined;
    return new HandleInflater(handle, state);
  }

  /** Feeds `input` with `flush`, yielding the output as it comes (each view valid until the next). */
  *step(flush: number, input: Buffer): Generator<Buffer> {
    let inOff = 0;
    let inLen = input.length;
    for (;;) {
      this.handle.writeSync(flush, input, inOff, inLen, this.out, 0, OUT_SIZE);
      if (this.error) throw this.error;
      const availOut = this.state[0]!;
      const availIn = this.state[1]!;
      if (availOut < OUT_SIZE) yield this.out.subarray(0, OUT_SIZE - availOut);
      // Output space left over means zlib took all it could of the input: this step is done.
      if (availOut !== 0) return;
      inOff += inLen - availIn;
      inLen = availIn;
    }
  }
}
