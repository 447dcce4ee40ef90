import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { execTool } from './exec.js';

export type Ext4Kind = 'file' | 'dir' | 'symlink' | 'other';

/** A directory entry as debugfs `ls -p` reports it. */
export interface Ext4Entry {
  readonly name: string;
  readonly kind: Ext4Kind;
  /** Permission bits (mode & 0o7777). */
  readonly perm: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
}

/** What a path should be after install(): a directory, a file (from a host file or bytes) or a symlink. */
export type Ext4Install =
  | { readonly kind: 'dir'; readonly path: string; readonly perm: number; readonly uid?: number; readonly gid?: number }
  | { readonly kind: 'file'; readonly path: string; readonly perm: number; readonly uid?: number; readonly gid?: number; readonly source: string | Buffer }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string; readonly uid?: number; readonly gid?: number };

const TYPE_BITS: Record<Ext4Kind, number> = { dir: 0o040000, file: 0o100000, symlink: 0o120000, other: 0 };

function kindOf(mode: number): Ext4Kind {
  switch (mode & 0o170000) {
    case 0o040000: return 'dir';
    case 0o100000: return 'file';
    case 0o120000: return 'symlink';
    default: return 'other';
  }
}

/** debugfs splits its command lines on blanks and treats quotes specially: paths with those are refused. */
function checkPath(p: string): string {
  if (!p.startsWith('/') || /[\s"'\\]/.test(p)) throw new BerthError('invalid', `cannot place "${p}" in the root file system: paths must be absolute, without blanks or quotes`);
  return p;
}

/** stderr of debugfs minus its version banner: anything left is an error message. */
function debugfsErrors(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !/^debugfs \d/.test(l));
}

/**
 * An ext4 file system inside an image file at a byte offset, read and edited with debugfs and checked
 * with e2fsck (both accept "img?offset=N"): no root, no loop mount. Paths are absolute in the file system.
 * debugfs resolves symlinks in intermediate path components, as the kernel would.
 */
export class Ext4Volume {
  private readonly listings = new Map<string, Ext4Entry[] | undefined>();

  constructor(readonly image: string, readonly offset: number) {}

  private get device(): string {
    return `${this.image}?offset=${this.offset}`;
  }

  private async request(cmd: string): Promise<{ stdout: Buffer; errors: string[] }> {
    const { stdout, stderr } = await execTool('debugfs', ['-R', cmd, this.device], { category: 'invalid' });
    return { stdout, errors: debugfsErrors(stderr) };
  }

  /** Entries of a directory (without . and ..), or undefined when it does not exist. Cached until install(). */
  async list(dir: string): Promise<Ext4Entry[] | undefined> {
    const key = dir.replace(/\/+$/, '') || '/';
    if (this.listings.has(key)) return this.listings.get(key);
    const { stdout, errors } = await this.request(`ls -p ${checkPath(key)}`);
    let entries: Ext4Entry[] | undefined;
    if (errors.length === 0) {
      entries = [];
      for (const line of stdout.toString().split('\n')) {
        // /inode/mode/uid/gid/name/size/
        const m = /^\/(\d+)\/([0-7]+)\/(\d+)\/(\d+)\/([^/]*)\/(\d*)\//.exec(line);
        if (!m || m[5] === '.' || m[5] === '..' || m[1] === '0') continue;
        const mode = parseInt(m[2]!, 8);
        entries.push({ name: m[5]!, kind: kindOf(mode), perm: mode & 0o7777, uid: Number(m[3]), gid: Number(m[4]), size: Number(m[6] || 0) });
      }
    }
    this.listings.set(key, entries);
    return entries;
  }

  /** The entry at a path, or undefined when it (or its directory) does not exist. */
  async lookup(file: string): Promise<Ext4Entry | undefined> {
    const dir = path.posix.dirname(file);
    return (await this.list(dir))?.find((e) => e.name === path.posix.basename(file));
  }

  /** A regular file's bytes, or undefined when there is none at that path. */
  async readFile(file: string): Promise<Buffer | undefined> {
    const { stdout, errors } = await this.request(`cat ${checkPath(file)}`);
    return errors.length > 0 ? undefined : stdout;
  }

  /** Every non-directory path below dir (recursively), for replacing a tree. */
  async filesBelow(dir: string): Promise<string[]> {
    const out: string[] = [];
    for (const e of (await this.list(dir)) ?? []) {
      const p = path.posix.join(dir, e.name);
      if (e.kind === 'dir') out.push(...(await this.filesBelow(p)));
      else out.push(p);
    }
    return out;
  }

  /**
   * Makes each path what its entry says, in order, in one debugfs run: missing parent directories are
   * created (0755 root), an existing file or symlink at a path is replaced, an existing directory keeps
   * its contents and gets the entry's mode and owner. `remove` lists paths to delete first.
   * Throws BerthError(resource) when the file system is full, BerthError(invalid) for any other debugfs error.
   */
  async install(entries: readonly Ext4Install[], remove: readonly string[] = []): Promise<void> {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-ext4-'));
    try {
      const cmds: string[] = [];
      const made = new Map<string, Ext4Kind>();
      const removed = new Set<string>();
      const kindAt = async (p: string): Promise<Ext4Kind | undefined> => (made.has(p) ? made.get(p) : removed.has(p) ? undefined : (await this.lookup(p))?.kind);
      for (const p of remove) {
        if ((await kindAt(p)) !== undefined) cmds.push(`rm ${checkPath(p)}`);
        removed.add(p);
      }
      const ensureDir = async (dir: string): Promise<void> => {
        if (dir === '/') return;
        const kind = await kindAt(dir);
        // debugfs follows a symlinked directory (merged /usr: /lib -> usr/lib) as the kernel would.
        if (kind === 'dir' || kind === 'symlink') return;
        if (kind !== undefined) throw new BerthError('invalid', `${dir} in the root file system is a ${kind}, not a directory`);
        await ensureDir(path.posix.dirname(dir));
        cmds.push(`mkdir ${checkPath(dir)}`, `sif ${dir} mode 0${(TYPE_BITS.dir | 0o755).toString(8)}`, `sif ${dir} uid 0`, `sif ${dir} gid 0`);
        made.set(dir, 'dir');
      };
      let n = 0;
      for (const e of entries) {
        const p = checkPath(e.path);
        await ensureDir(path.posix.dirname(p));
        const existing = await kindAt(p);
        if (e.kind === 'dir') {
          if (existing !== undefined && existing !== 'dir') throw new BerthError('invalid', `${p} in the root file system is a ${existing}, not a directory`);
          if (existing === undefined) cmds.push(`mkdir ${p}`);
        } else {
          if (existing === 'dir') throw new BerthError('invalid', `${p} in the root file system is a directory; berth flash would put a ${e.kind} there`);
          if (existing !== undefined) cmds.push(`rm ${p}`);
          if (e.kind === 'symlink') {
            cmds.push(`symlink ${p} ${checkPath(e.target)}`);
          } else {
            let source = e.source;
            if (typeof source !== 'string') {
              const file = path.join(tmp, String(n++));
              await fs.writeFile(file, source, { mode: 0o600 }); // credentials among them
              source = file;
            }
            cmds.push(`write ${checkPath(source)} ${p}`);
          }
        }
        if (e.kind !== 'symlink') cmds.push(`sif ${p} mode 0${(TYPE_BITS[e.kind] | e.perm).toString(8)}`);
        cmds.push(`sif ${p} uid ${e.uid ?? 0}`, `sif ${p} gid ${e.gid ?? 0}`);
        made.set(p, e.kind);
      }
      const script = path.join(tmp, 'commands');
      await fs.writeFile(script, cmds.join('\n') + '\n');
      const { stderr } = await execTool('debugfs', ['-w', '-f', script, this.device], { category: 'invalid' });
      const errors = debugfsErrors(stderr);
      if (errors.length > 0) {
        const full = errors.some((l) => /allocate|No free space|Could not allocate|ENOSPC/i.test(l));
        throw new BerthError(full ? 'resource' : 'invalid', `editing the root file system failed: ${errors.slice(0, 5).join('; ')}`,
          full ? { hint: 'the image\'s root partition has too little free space for the agent bundle; grow it first (e.g. truncate + resize2fs on a copy)' } : undefined);
      }
    } finally {
      this.listings.clear();
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  /** The block size and the free bytes (free blocks × block size, from the superblock via debugfs `stats -h`). */
  async space(): Promise<{ blockSize: number; freeBytes: number }> {
    const { stdout, errors } = await this.request('stats -h');
    const text = stdout.toString();
    const blockSize = Number(/^Block size:\s+(\d+)/m.exec(text)?.[1]);
    const free = Number(/^Free blocks:\s+(\d+)/m.exec(text)?.[1]);
    if (errors.length > 0 || !(blockSize > 0) || !Number.isFinite(free)) throw new BerthError('invalid', `cannot read the root file system's free space: ${errors.join('; ') || 'no block counts in debugfs stats'}`);
    return { blockSize, freeBytes: free * blockSize };
  }

  /** e2fsck -fn: throws BerthError(invalid) with its report unless the file system is clean. */
  async check(): Promise<void> {
    try {
      await execTool('e2fsck', ['-fn', this.device], { category: 'invalid' });
    } catch (err) {
      throw new BerthError('invalid', `the root file system does not check clean (e2fsck -fn): ${(err as Error).message}`, { cause: err });
    }
  }
}
