import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BerthError, isErrno } from '../../errors.js';
import { fsyncDir, writeFileAtomic } from '../../host/fsync.js';
import { parseDigest, verifyBytes } from '../digest.js';
import { syscalls } from '../unpack/sys.js';

/**
 * Content store: immutable blobs addressed by digest, under `<dir>/blobs/<alg>/<hex>`.
 *
 * Contract (containerd's):
 * - A blob is visible through has/path/read only after its bytes were checked against digest and size,
 *   fsynced, renamed into place, and the rename fsynced.
 * - Partial downloads live in `<dir>/ingest/` named by digest. They survive crashes and are resumed, but
 *   never trusted: the final digest check covers every byte, including those written before a crash.
 * - A partial has one writer at a time, held by a flock on the partial itself (see openLocked).
 */
export class ContentStore {
  constructor(readonly dir: string) {
    fs.mkdirSync(path.join(dir, 'blobs'), { recursive: true, mode: 0o700 });
    fs.mkdirSync(path.join(dir, 'ingest'), { recursive: true, mode: 0o700 });
  }

  path(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.dir, 'blobs', algorithm, hex);
  }

  has(digest: string): boolean {
    return fs.existsSync(this.path(digest));
  }

  size(digest: string): number | undefined {
    try {
      return fs.statSync(this.path(digest)).size;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  read(digest: string): Buffer {
    try {
      return fs.readFileSync(this.path(digest));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new BerthError('notFound', `blob ${digest} is not in the content store`);
      throw err;
    }
  }

  /** Stores small bytes (manifests, configs) after verifying them. */
  put(digest: string, bytes: Uint8Array, what = `blob ${digest}`): void {
    verifyBytes(bytes, digest, undefined, what);
    if (this.has(digest)) return;
    const file = this.path(digest);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, bytes, 0o644);
  }

  /**
   * Opens (or resumes) the ingest of a blob. Partial bytes already on disk are rehashed, not trusted.
   * One writer per partial: a second ingest of the same digest while this one is open (another process,
   * or another pull in this one) is a `conflict`.
   */
  async ingest(digest: string, size: number): Promise<Ingest> {
    const { algorithm, hex } = parseDigest(digest);
    const partial = path.join(this.dir, 'ingest', `${algorithm}-${hex}`);
    const fd = openLocked(partial, digest);
    try {
      // Left by versions that locked with a pid file; the flock makes it meaningless.
      fs.rmSync(`${partial}.lock`, { force: true });
      const hash = crypto.createHash(algorithm);
      let offset = fs.fstatSync(fd).size;
      if (offset > size) {
        fs.ftruncateSync(fd, 0);
        offset = 0;
      } else if (offset > 0) {
        for await (const chunk of fs.createReadStream(partial, { end: offset - 1 })) hash.update(chunk as Buffer);
      }
      return new Ingest(this, digest, size, partial, fd, hash, offset);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  delete(digest: string): boolean {
    const file = this.path(digest);
    if (!fs.existsSync(file)) return false;
    fs.rmSync(file);
    fsyncDir(path.dirname(file));
    return true;
  }

  /** Every committed blob's digest. */
  list(): string[] {
    const out: string[] = [];
    const blobs = path.join(this.dir, 'blobs');
    for (const alg of fs.readdirSync(blobs)) {
      for (const hex of fs.readdirSync(path.join(blobs, alg))) out.push(`${alg}:${hex}`);
    }
    return out;
  }

  /** Deletes a partial download unless a pull is writing it right now; false when one is. */
  removePartial(file: string): boolean {
    if (path.dirname(file) !== path.join(this.dir, 'ingest')) throw new BerthError('internal', `${file} is not a partial download`);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return true;
      throw err;
    }
    try {
      if (!syscalls().tryLockExclusive(fd)) return false;
      fs.rmSync(file, { force: true });
      fs.rmSync(`${file}.lock`, { force: true });
      return true;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Partial downloads, with their size and last write time. */
  partials(): Array<{ file: string; size: number; mtimeMs: number }> {
    const dir = path.join(this.dir, 'ingest');
    return fs.readdirSync(dir).filter((name) => !name.endsWith('.lock')).map((name) => {
      const st = fs.statSync(path.join(dir, name));
      return { file: path.join(dir, name), size: st.size, mtimeMs: st.mtimeMs };
    });
  }
}

/** One blob being written. Append with write(); commit() verifies and publishes; close() keeps the partial for a later resume. */
export class Ingest {
  private done = false;

  constructor(
    private readonly store: ContentStore,
    readonly digest: string,
    readonly size: number,
    private readonly partial: string,
    private readonly fd: number,
    private readonly hash: crypto.Hash,
    private written: number,
  ) {}

  /** Bytes already present when the ingest was opened plus those written since. */
  get offset(): number {
    return this.written;
  }

  /** The bytes written by an earlier, interrupted attempt (to re-feed a streaming unpacker). */
  replay(upTo: number): Readable {
    if (upTo === 0) return Readable.from([]);
    return fs.createReadStream(this.partial, { start: 0, end: upTo - 1 });
  }

  /** Appends synchronously: an awaited thread-pool write per chunk dominated pull time (scripts/bench/pull). */
  write(chunk: Buffer): void {
    if (this.written + chunk.length > this.size) {
      throw new BerthError('invalid', `blob ${this.digest} is larger than the ${this.size} bytes its descriptor states`);
    }
    try {
      for (let off = 0; off < chunk.length; ) off += fs.writeSync(this.fd, chunk, off, chunk.length - off);
    } catch (err) {
      if (isErrno(err, 'ENOSPC')) throw new BerthError('resource', `disk full while downloading ${this.digest}`, { cause: err });
      throw err;
    }
    this.hash.update(chunk);
    this.written += chunk.length;
  }

  /** Verifies size and digest, fsyncs and renames into the store. On mismatch the partial is discarded. */
  async commit(): Promise<void> {
    this.done = true;
    const actual = `${parseDigest(this.digest).algorithm}:${this.hash.digest('hex')}`;
    if (this.written !== this.size || actual !== this.digest) {
      fs.rmSync(this.partial, { force: true });
      fs.closeSync(this.fd);
      const why = this.written !== this.size ? `${this.written} bytes instead of ${this.size}` : `digest ${actual}`;
      throw new BerthError('invalid', `blob ${this.digest} failed verification (${why}); the download was discarded`);
    }
    // Renamed while still locked: a pull waiting on the partial then finds it gone, not complete.
    try {
      fs.fsyncSync(this.fd);
      const target = this.store.path(this.digest);
      fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
      fs.renameSync(this.partial, target);
      fsyncDir(path.dirname(target));
    } finally {
      fs.closeSync(this.fd);
    }
  }

  /** Stops writing and deletes the partial: its bytes are known bad (corrupt or hostile). */
  async discard(): Promise<void> {
    if (this.done) return;
    this.done = true;
    fs.rmSync(this.partial, { force: true });
    fs.closeSync(this.fd);
  }

  /** Stops writing but keeps the partial, so the next pull resumes where this one stopped. */
  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      fs.fsyncSync(this.fd);
    } catch {
      // keeping the partial matters more than syncing it: the next pull rehashes it anyway
    }
    fs.closeSync(this.fd);
  }
}

/**
 * Opens a partial for appending and takes its flock: one writer per partial blob. The lock lives in the
 * kernel and dies with its holder, so a killed pull never blocks the next one, whatever pid either gets
 * (a lock file naming a pid could not tell a reused pid, a zombie or our own pid from a live writer).
 * Two pulls in one process open the file separately and so conflict too.
 *
 * A holder may rename (commit) or delete (discard) the partial and then unlock: whoever got the lock on
 * that old inode checks the path still names it, and otherwise opens afresh.
 */
function openLocked(partial: string, digest: string): number {
  for (let attempt = 0; attempt < 5; attempt++) {
    const fd = fs.openSync(partial, 'a+', 0o600);
    let keep = false;
    try {
      if (!syscalls().tryLockExclusive(fd)) {
        throw new BerthError('conflict', `blob ${digest} is being downloaded by another pull`, { hint: 'wait for it to finish, then pull again' });
      }
      keep = sameFile(fd, partial);
      if (keep) return fd;
    } finally {
      if (!keep) fs.closeSync(fd);
    }
  }
  throw new BerthError('conflict', `cannot lock the download of ${digest}: it keeps being replaced`);
}

function sameFile(fd: number, file: string): boolean {
  try {
    const a = fs.fstatSync(fd);
    const b = fs.statSync(file);
    return a.ino === b.ino && a.dev === b.dev;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}
