import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../../errors.js';
import { S_IFBLK, S_IFCHR, S_IFIFO, syscalls } from './sys.js';
import { TarReader, type EntryBody, type TarHeader } from './tar-reader.js';

/**
 * How whiteouts are represented. `overlay`: the directory is one layer of an overlayfs stack, so a
 * whiteout becomes a 0:0 character device and an opaque directory gets `trusted.overlay.opaque=y`.
 * `merged`: the directory already holds the lower layers, so whiteouts delete from it. `none`: not a
 * layer (berth cp): `.wh.` names are ordinary files.
 */
export type WhiteoutMode = 'overlay' | 'merged' | 'none';

export interface ApplyOptions {
  readonly whiteouts: WhiteoutMode;
  readonly signal?: AbortSignal;
  readonly onWarning?: (message: string) => void;
  /** Renames entries before anything else looks at them (berth cp: the top name becomes the destination's). */
  readonly mapName?: (name: string) => string;
  /** Every entry gets this owner instead of the tar's (berth cp without -a). */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

export interface ApplyResult {
  readonly entries: number;
  readonly bytes: number;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

class Hostile extends Error {}

/** Splits an entry name into components; `..` anywhere is refused, a leading `/` or `./` is relative to the root. */
function components(name: string): string[] {
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new Hostile('path traversal ("..")');
  return parts;
}

/**
 * The layer's directory tree as this apply sees it. Directories it has checked (real directories, not
 * symlinks) are remembered so each is lstat'ed once per layer rather than once per entry beneath it;
 * every deletion forgets them all, so a directory replaced by a symlink is never trusted from memory.
 */
class Tree {
  private readonly checked = new Set<string>();

  constructor(readonly root: string) {}

  /**
   * Makes sure each of `dirParts` is a real directory inside the root, creating missing ones, and returns
   * the last. A component that is a symlink is refused rather than followed: following one is how a
   * layer writes outside its root.
   */
  ensureDirs(dirParts: readonly string[]): string {
    let dir = this.root;
    for (const part of dirParts) {
      dir = path.join(dir, part);
      if (this.checked.has(dir)) continue;
      const st = lstatOrUndefined(dir);
      if (st === undefined) fs.mkdirSync(dir, { mode: 0o755 });
      else if (st.isSymbolicLink()) throw new Hostile(`"${path.relative(this.root, dir)}" is a symlink; writing through symlinks is refused`);
      else if (!st.isDirectory()) throw new Hostile(`"${path.relative(this.root, dir)}" is not a directory`);
      this.checked.add(dir);
    }
    return dir;
  }

  /** The path of an entry, after checking its parents. */
  ensureParents(parts: readonly string[]): string {
    return path.join(this.ensureDirs(parts.slice(0, -1)), parts.at(-1)!);
  }

  /** Clears whatever is at `target` unless it is a directory that a directory entry may keep. */
  clear(target: string, keepDir: boolean): void {
    const st = lstatOrUndefined(target);
    if (!st || (keepDir && st.isDirectory())) return;
    fs.rmSync(target, { recursive: true, force: true });
    this.checked.clear();
  }

  markDir(dir: string): void {
    this.checked.add(dir);
  }

  /** Creates a regular file that did not exist, replacing (never following) whatever stood there. */
  createFile(target: string): number {
    try {
      return fs.openSync(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    this.clear(target, false);
    return fs.openSync(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  }
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** write(2) until all of `chunk` is on its way: a short write is not an error. */
function writeAll(fd: number, chunk: Buffer): void {
  for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off, chunk.length - off);
}

/**
 * Applies one uncompressed layer tar to `root`. Rejects hostile entries with a BerthError naming them.
 * `source` is read to its end (what follows the end-of-archive blocks included), so a caller hashing the
 * chunks it yields has hashed the whole stream when this resolves. Each chunk is parsed and written out
 * before the next is read (tar-reader.ts: why that keeps a pull's memory flat).
 */
export async function applyLayer(source: AsyncIterable<Buffer>, root: string, opts: ApplyOptions): Promise<ApplyResult> {
  const tree = new Tree(root);
  const dirTimes: Array<[string, Date]> = [];
  // What this layer wrote, for a merged apply's opaque directories only (markOpaque): an overlay layer
  // never reads it, and on a layer of many files it held every path to the end of the layer.
  const written = opts.whiteouts === 'merged' ? new Set<string>() : undefined;
  const opaque: string[] = [];
  let entries = 0;
  let bytes = 0;
  let name = '';
  /** The regular file being written, closed on the way out if the layer fails inside it. */
  let openFd: number | undefined;

  const onEntry = (header: TarHeader): EntryBody | undefined => {
    opts.signal?.throwIfAborted();
    const h = opts.mapName || opts.owner ? { ...header, ...(opts.mapName && { name: opts.mapName(header.name) }), ...opts.owner } : header;
    name = h.name;
    entries++;
    const parts = components(h.name);
    const base = parts.at(-1);
    if (base === undefined) {
      // The root itself: only a directory may stand there (CVE-2021-29136 replaced it with a symlink).
      if (h.type !== 'directory') throw new Hostile('replaces the root of the layer');
      fs.lchownSync(root, h.uid, h.gid);
      fs.chmodSync(root, h.mode & 0o7777);
      return undefined;
    }
    if (base.startsWith(WH) && opts.whiteouts !== 'none') {
      applyWhiteout(tree, parts, opts, opaque);
      return undefined;
    }
    const target = tree.ensureParents(parts);
    written?.add(target);
    let body: EntryBody | undefined;
    switch (h.type) {
      case 'directory':
        tree.clear(target, true);
        if (!lstatOrUndefined(target)) fs.mkdirSync(target, { mode: 0o700 });
        tree.markDir(target);
        fs.lchownSync(target, h.uid, h.gid);
        fs.chmodSync(target, h.mode & 0o7777);
        if (h.mtime) dirTimes.push([target, h.mtime]);
        break;
      case 'file':
      case 'contiguous-file': {
        // Synchronous calls: one thread-pool round trip per chunk and per chown/chmod made unpacking
        // several times slower than tar (scripts/bench/pull).
        const fd = tree.createFile(target);
        openFd = fd;
        body = {
          write: (chunk) => writeAll(fd, chunk),
          end: () => {
            openFd = undefined;
            try {
              fs.fchownSync(fd, h.uid, h.gid);
              fs.fchmodSync(fd, h.mode & 0o7777); // after chown, which clears setuid bits
              if (h.mtime) fs.futimesSync(fd, h.mtime, h.mtime);
            } finally {
              fs.closeSync(fd);
            }
            // After the chown, which drops security.capability.
            if (h.xattrs) applyXattrs(target, h.xattrs, opts);
            bytes += h.size;
          },
        };
        return body;
      }
      case 'symlink':
        // Any target is allowed, absolute ones too: it resolves inside the container's root at run time.
        // It is never followed here.
        tree.clear(target, false);
        fs.symlinkSync(h.linkname ?? '', target);
        fs.lchownSync(target, h.uid, h.gid);
        if (h.mtime) fs.lutimesSync(target, h.mtime, h.mtime);
        break;
      case 'link': {
        const linkParts = components(h.linkname ?? '');
        if (linkParts.length === 0) throw new Hostile('hardlink to the root');
        const source = tree.ensureParents(linkParts);
        const st = lstatOrUndefined(source);
        if (!st) throw new Hostile(`hardlink to "${h.linkname}", which is not in the layer`);
        if (st.isDirectory()) throw new Hostile(`hardlink to directory "${h.linkname}"`);
        tree.clear(target, false);
        fs.linkSync(source, target);
        break;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        tree.clear(target, false);
        const kind = h.type === 'fifo' ? S_IFIFO : h.type === 'block-device' ? S_IFBLK : S_IFCHR;
        syscalls().mknod(target, kind | (h.mode & 0o7777), h.devmajor ?? 0, h.devminor ?? 0);
        fs.lchownSync(target, h.uid, h.gid);
        break;
      }
      default:
        throw new Hostile(`unsupported entry type ${h.type}`);
    }
    if (h.xattrs) applyXattrs(target, h.xattrs, opts);
    return body;
  };

  const reader = new TarReader(onEntry);
  try {
    for await (const chunk of source) reader.push(chunk);
    reader.end();
  } catch (err) {
    if (openFd !== undefined) fs.closeSync(openFd);
    if (err instanceof Hostile) throw new BerthError('invalid', `hostile layer entry "${name}": ${err.message}`);
    if (isErrno(err, 'ENOSPC')) throw new BerthError('resource', `disk full while unpacking "${name}"`, { cause: err });
    if (err instanceof BerthError) throw err;
    // A failing syscall (EACCES, EROFS …) is the host's problem; anything else, zlib's Z_DATA_ERROR
    // included, means the layer's bytes are corrupt or malformed.
    const category = /^E[A-Z0-9]+$/.test(String((err as NodeJS.ErrnoException).code)) ? 'host' : 'invalid';
    throw new BerthError(category, `cannot unpack layer entry "${name}": ${(err as Error).message}`, { cause: err });
  }
  // Opaque directories hide the lower layers' children, whatever the order in the tar.
  for (const dir of opaque) markOpaque(dir, opts, written ?? new Set());
  // Directory times last: creating children changed them.
  for (const [dir, mtime] of dirTimes.reverse()) fs.utimesSync(dir, mtime, mtime);
  return { entries, bytes };
}

function applyWhiteout(tree: Tree, parts: string[], opts: ApplyOptions, opaque: string[]): void {
  const base = parts.at(-1)!;
  const dirParts = parts.slice(0, -1);
  const dir = tree.ensureDirs(dirParts);
  if (base === OPAQUE) {
    opaque.push(dir);
    return;
  }
  if (base.startsWith(`${WH}${WH}`)) return; // aufs metadata (.wh..wh.plnk …): not content
  const hidden = base.slice(WH.length);
  if (hidden === '' || hidden === '.' || hidden === '..') throw new Hostile('malformed whiteout name');
  const target = path.join(dir, hidden);
  tree.clear(target, false);
  if (opts.whiteouts === 'overlay') syscalls().mknod(target, S_IFCHR | 0o000, 0, 0);
}

function markOpaque(dir: string, opts: ApplyOptions, written: Set<string>): void {
  if (opts.whiteouts === 'overlay') {
    syscalls().lsetxattr(dir, 'trusted.overlay.opaque', Buffer.from('y'));
    return;
  }
  // Merged: drop what the lower layers left in the directory, keep what this layer wrote.
  for (const child of fs.readdirSync(dir)) {
    const p = path.join(dir, child);
    if (![...written].some((w) => w === p || w.startsWith(`${p}/`))) fs.rmSync(p, { recursive: true, force: true });
  }
}

function applyXattrs(target: string, xattrs: ReadonlyArray<readonly [string, Buffer]>, opts: ApplyOptions): void {
  for (const [attr, value] of xattrs) {
    // overlay's own attributes steer the stack (redirects, opaque dirs): a layer must not set them.
    if (attr.startsWith('trusted.overlay.')) throw new Hostile(`sets the reserved xattr ${attr}`);
    try {
      syscalls().lsetxattr(target, attr, value);
    } catch (err) {
      if (!isErrno(err, 'ENOTSUP') && !isErrno(err, 'EPERM')) throw err;
      opts.onWarning?.(`xattr ${attr} on ${path.basename(target)} not supported here; skipped`);
    }
  }
}
