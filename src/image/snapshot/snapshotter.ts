import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../../errors.js';
import { fsyncDir } from '../../host/fsync.js';
import { processAlive } from '../../host/process.js';
import { parseDigest } from '../digest.js';
import type { WhiteoutMode } from '../unpack/apply.js';

/**
 * How snapshots are laid out. `overlay`: each snapshot holds one layer's diff in overlayfs form, and a
 * container's root is an overlay of its chain. `copy` (no overlayfs): each snapshot holds the whole
 * merged tree of its chain, built by copying the parent and applying the layer on top.
 */
export type SnapshotMode = 'overlay' | 'copy';

/** The chain IDs of a layer stack (image-spec config.md): chain(1) = diff(1), chain(n) = sha256(chain(n-1) + " " + diff(n)). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diff of diffIds) {
    const parent = out.at(-1);
    out.push(parent === undefined ? diff : `sha256:${crypto.createHash('sha256').update(`${parent} ${diff}`).digest('hex')}`);
  }
  return out;
}

export interface PreparedSnapshot {
  /** The directory to unpack the layer into. */
  readonly dir: string;
  /** How whiteouts must be written into `dir`. */
  readonly whiteouts: WhiteoutMode;
  /** Publishes the snapshot under its chain ID. */
  commit(): void;
  /** Removes the unfinished directory. */
  abort(): void;
}

/**
 * Snapshots by chain ID under `<dir>/<hex>`, so images that share a layer stack share disk.
 * Contract: a snapshot directory exists under its chain ID only when it is complete; unfinished ones live
 * in `<dir>/.tmp/` and are cleared on the next start (a crash leaves them behind).
 */
export class Snapshotter {
  private readonly tmpDir: string;

  constructor(readonly dir: string, readonly mode: SnapshotMode) {
    this.tmpDir = path.join(dir, '.tmp');
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  path(chainId: string): string {
    return path.join(this.dir, parseDigest(chainId).hex);
  }

  has(chainId: string): boolean {
    return fs.existsSync(this.path(chainId));
  }

  /** Removes unfinished snapshots whose pull is gone (killed, crashed), and interrupted removals. */
  clearUnfinished(): number {
    const stale = fs.readdirSync(this.tmpDir).filter((name) => {
      const pid = /^[a-f0-9]+-(\d+)-[a-f0-9]+$/.exec(name)?.[1];
      return pid === undefined || !processAlive(Number(pid));
    });
    for (const name of stale) fs.rmSync(path.join(this.tmpDir, name), { recursive: true, force: true });
    return stale.length;
  }

  /** Starts a snapshot for `chainId`. In copy mode the parent's tree is copied in first, so the parent must exist. */
  prepare(chainId: string, parent: string | undefined): PreparedSnapshot {
    const dir = path.join(this.tmpDir, `${parseDigest(chainId).hex}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
    if (this.mode === 'copy' && parent !== undefined) {
      if (!this.has(parent)) throw new BerthError('internal', `parent snapshot ${parent} missing for ${chainId}`);
      // cp -a keeps owners, modes, devices, xattrs and hardlinks, which Node's fs.cp does not.
      execFileSync('cp', ['-a', '--reflink=auto', this.path(parent), dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    } else {
      fs.mkdirSync(dir, { mode: 0o755 });
    }
    const target = this.path(chainId);
    return {
      dir,
      whiteouts: this.mode === 'overlay' ? 'overlay' : 'merged',
      commit: () => {
        try {
          fs.renameSync(dir, target);
        } catch (err) {
          // Another pull finished the same snapshot first: identical content, keep theirs.
          if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) throw err;
          fs.rmSync(dir, { recursive: true, force: true });
        }
        fsyncDir(this.dir);
      },
      abort: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }

  remove(chainId: string): boolean {
    const p = this.path(chainId);
    if (!fs.existsSync(p)) return false;
    // Rename first so a crash mid-delete never leaves a half-empty snapshot under a valid name.
    const doomed = path.join(this.tmpDir, `rm-${path.basename(p)}-${crypto.randomBytes(4).toString('hex')}`);
    fs.renameSync(p, doomed);
    fs.rmSync(doomed, { recursive: true, force: true });
    return true;
  }

  list(): string[] {
    return fs.readdirSync(this.dir).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((hex) => `sha256:${hex}`);
  }
}

/** overlayfs where the kernel has it; otherwise full copies. */
export function defaultSnapshotMode(procFilesystems: string | undefined): SnapshotMode {
  return procFilesystems !== undefined && /\boverlay$/m.test(procFilesystems) ? 'overlay' : 'copy';
}
