import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BerthError, isErrno } from '../../errors.js';
import { fsyncDir, writeFileAtomic } from '../../host/fsync.js';
import { processAlive } from '../../host/process.js';
import { parseDigest, verifyBytes } from '../digest.js';

/**
 * Content store: immutable blobs addressed by digest, under `<dir>/blobs/<alg>/<hex>`.
 *
 * Contract (containerd's):
 * - A blob is visible through has/path/read only after its bytes were checked against digest and size,
 *   fsynced, renamed into place, and the rename fsynced.
 * - Partial downloads live in `<dir>/ingest/` named by digest. They survive crashes and are resumed, but
 *   never trusted: the final digest check covers every byte, including those written before a crash.
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

  /** Opens (or resumes) the ingest of a blob. Partial bytes already on disk are rehashed, not trusted. */
  async ingest(digest: string, size: number): Promise<Ingest> {
    const { algorithm, hex } = parseDigest(digest);
    const partial = path.join(this.dir, 'ingest', `${algorithm}-${hex}`);
    const lock = acquireLock(`${partial}.lock`, digest);
    const hash = crypto.createHash(algorithm);
    let offset = 0;
    try {
      const st = fs.statSync(partial);
      if (st.size > size) fs.rmSync(partial);
      else {
        for await (const chunk of fs.createReadStream(partial)) hash.update(chunk as Buffer);
        offset = st.size;
      }
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    const fd = fs.openSync(partial, 'a', 0o600);
    return new Ingest(this, digest, size, partial, fd, hash, offset, lock);
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

  removePartial(file: string): void {
    if (path.dirname(file) !== path.join(this.dir, 'ingest')) throw new BerthError('internal', `${file} is not a partial download`);
    fs.rmSync(file, { force: true });
    fs.rmSync(`${file}.lock`, { force: true });
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
    private readonly lock: string,
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
      fs.closeSync(this.fd);
      fs.rmSync(this.partial, { force: true });
      fs.rmSync(this.lock, { force: true });
      const why = this.written !== this.size ? `${this.written} bytes instead of ${this.size}` : `digest ${actual}`;
      throw new BerthError('invalid', `blob ${this.digest} failed verification (${why}); the download was discarded`);
    }
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    const target = this.store.path(this.digest);
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    fs.renameSync(this.partial, target);
    fsyncDir(path.dirname(target));
    fs.rmSync(this.lock, { force: true });
  }

  /** Stops writing and deletes the partial: its bytes are known bad (corrupt or hostile). */
  async discard(): Promise<void> {
    if (!this.done) {
      this.done = true;
      fs.closeSync(this.fd);
    }
    fs.rmSync(this.partial, { force: true });
    fs.rmSync(this.lock, { force: true });
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
    fs.rmSync(this.lock, { force: true });
  }
}

/**
 * One writer per partial blob: a lock file holding the writer's pid. A lock whose process is gone (killed,
 * crashed) is taken over; a live one means another pull is downloading the same blob right now.
 */
function acquireLock(file: string, digest: string): string {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return file;
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const pid = Number(fs.readFileSync(file, 'utf8'));
    // Our own pid is live too: two pulls inside one agent process must not share a partial either.
    if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
      throw new BerthError('conflict', `blob ${digest} is being downloaded by another pull (pid ${pid})`, { hint: 'wait for it to finish, then pull again' });
    }
    fs.rmSync(file, { force: true });
  }
  throw new BerthError('conflict', `cannot lock the download of ${digest}`);
}
