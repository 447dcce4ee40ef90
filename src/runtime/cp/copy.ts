import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, isErrno } from '../../errors.js';
import { applyLayer } from '../../image/unpack/apply.js';
import { resolveInRoot } from '../spec/user.js';
import { packTree } from './pack.js';

/**
 * docker cp over one root (a running container's, as the host sees it, or the host's own `/`):
 * every path is resolved inside `root`, symlinks included, as chroot would, so no path or symlink in
 * the container reaches the host; what is written is written by the layer unpacker, which refuses to
 * write through symlinks and `..`.
 */

/** A path's host location inside `root`: its parent's symlinks resolved within the root, the last component itself. */
function locate(root: string, p: string): { host: string; st: fs.Stats | undefined } {
  const trimmed = p.replace(/\/+$/, '');
  const parent = resolveInRoot(root, path.posix.dirname(trimmed === '' ? '/' : trimmed));
  if (parent === undefined) throw new BerthError('invalid', `${p}: too many levels of symbolic links`);
  const host = trimmed === '' || trimmed === '/' ? parent : path.join(parent, path.posix.basename(trimmed));
  try {
    return { host, st: fs.lstatSync(host) };
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return { host, st: undefined };
    throw err;
  }
}

/** The top entry name a path is archived under (docker cp: its base name; `DIR/.`: none, the contents). */
export function archiveTop(p: string): string {
  if (/(^|\/)\.$/.test(p)) return '';
  const base = path.posix.basename(p.replace(/\/+$/, ''));
  return base === '' ? '.' : base;
}

/**
 * The tar stream of `srcPath` inside `root`. A symlink as the last component is archived as the link
 * (docker cp without -L); `followLink`: as what it points to, resolved inside the root.
 */
export function archiveFrom(root: string, srcPath: string, followLink = false): Readable {
  let { host, st } = locate(root, srcPath);
  if (st?.isSymbolicLink() && (followLink || srcPath.endsWith('/'))) {
    const resolved = resolveInRoot(root, srcPath);
    if (resolved === undefined) throw new BerthError('invalid', `${srcPath}: too many levels of symbolic links`);
    host = resolved;
    st = fs.existsSync(host) ? fs.lstatSync(host) : undefined;
  }
  if (!st) throw new BerthError('notFound', `no such file or directory: ${srcPath}`);
  const top = archiveTop(srcPath);
  if (top === '' && !st.isDirectory()) throw new BerthError('invalid', `${srcPath}: not a directory`);
  return packTree(host, top);
}

export interface ExtractOptions {
  /** `-a`: keep the archive's owners; otherwise everything belongs to `owner` (docker: the container's root). */
  readonly keepOwner: boolean;
  readonly owner: { readonly uid: number; readonly gid: number };
  /**
   * The top entry name the archive has (`archiveTop` of its source), when it comes from a path: it is
   * renamed to the destination's base name when the destination is not an existing directory. Absent
   * (a tar on stdin): the destination must be an existing directory.
   */
  readonly top?: string;
}

/**
 * Writes a tar stream to `destPath` inside `root` with docker cp's rules: into it when it is an
 * existing directory (symlinks to directories resolved inside the root); as it when it does not exist
 * and its parent does; over it when both are files. Returns the number of entries written.
 */
export async function extractTo(root: string, destPath: string, archive: Readable, o: ExtractOptions): Promise<number> {
  const dest = resolveInRoot(root, destPath);
  if (dest === undefined) throw new BerthError('invalid', `${destPath}: too many levels of symbolic links`);
  const st = fs.existsSync(dest) ? fs.statSync(dest) : undefined;
  const apply = (dir: string, mapName?: (n: string) => string): Promise<number> =>
    applyLayer(archive, dir, { whiteouts: 'none', ...(mapName && { mapName }), ...(!o.keepOwner && { owner: o.owner }) }).then((r) => r.entries);
  if (st?.isDirectory()) return apply(dest);
  if (o.top === undefined) throw new BerthError('notFound', `destination ${destPath} must be an existing directory to extract a tar stream into`);
  if (destPath.endsWith('/')) throw new BerthError('notFound', `destination directory ${destPath} does not exist`);
  const parent = path.dirname(dest);
  if (!fs.existsSync(parent) || !fs.statSync(parent).isDirectory()) throw new BerthError('notFound', `destination directory ${path.posix.dirname(destPath)} does not exist`);
  const base = path.basename(dest);
  if (o.top === '') {
    fs.mkdirSync(dest, { mode: 0o755 });
    return apply(dest);
  }
  if (st && !st.isFile()) throw new BerthError('conflict', `cannot overwrite ${destPath}: not a file`);
  // The archive's top entry becomes the destination's own name.
  const top = o.top;
  return apply(parent, (n) => {
    const clean = n.replace(/^\.?\/+/, '');
    return clean === top || clean === `${top}/` ? base : clean.startsWith(`${top}/`) ? `${base}${clean.slice(top.length)}` : clean;
  });
}
