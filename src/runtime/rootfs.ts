import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { parseMountinfo } from '../host/mountinfo.js';
import { treeSize } from '../host/tree-size.js';
import type { Snapshotter } from '../image/snapshot/snapshotter.js';

/** A container's own directory under the state root: its spec, rootfs, upper/work dirs and state/. */
export function containerDir(stateRoot: string, id: string): string {
  return path.join(stateRoot, 'containers', id);
}

/** Bytes of a container's writable layer: overlay's upper dir, or the whole copied root without overlayfs. */
export function writableLayerSize(dir: string): number {
  const upper = path.join(dir, 'upper');
  return treeSize(fs.existsSync(upper) ? upper : path.join(dir, 'rootfs'));
}

/** Where a container's writable root lives: `<dir>/rootfs`, plus `upper`/`work` for overlayfs. */
export interface ContainerRootfs {
  readonly rootfs: string;
  readonly mode: 'overlay' | 'copy';
  /** overlay, not mounted yet: the mount options, for berth-monitor to mount before the runtime runs. */
  readonly overlayOptions?: string;
}

// The kernel caps mount options at a page; each lowerdir costs its path length plus a colon.
const MAX_MOUNT_OPTIONS = 4000;

/**
 * Builds a container's root from an image's snapshot chain (bottom first). overlay: the chain as lower
 * layers under a private upper dir, so the image stays untouched and is shared; this makes the dirs and
 * returns the mount options, and berth-monitor mounts it (a syscall where mount(8) would be a process)
 * and unmounts it after the exit. copy (no overlayfs): copies the top snapshot, which already holds the
 * merged tree. Idempotent: an existing mount or copy is reused.
 */
export function prepareRootfs(snapshots: Snapshotter, chain: readonly string[], dir: string): ContainerRootfs {
  if (chain.length === 0) throw new BerthError('invalid', 'image has no layers');
  const rootfs = path.join(dir, 'rootfs');
  for (const c of chain) if (!snapshots.has(c)) throw new BerthError('notFound', `snapshot ${c} is missing; pull the image again`);
  if (snapshots.mode === 'copy') {
    if (!fs.existsSync(rootfs)) {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      const tmp = `${rootfs}.tmp`;
      fs.rmSync(tmp, { recursive: true, force: true });
      // cp -a keeps owners, modes, devices, xattrs and hardlinks, which Node's fs.cp does not.
      execFileSync('cp', ['-a', '--reflink=auto', snapshots.path(chain.at(-1)!), tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
      fs.renameSync(tmp, rootfs);
    }
    return { rootfs, mode: 'copy' };
  }
  if (isMountPoint(rootfs)) return { rootfs, mode: 'overlay' };
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  for (const d of [rootfs, upper, work]) fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  const lower = [...chain].reverse().map((c) => snapshots.path(c)).join(':');
  const options = `lowerdir=${lower},upperdir=${upper},workdir=${work}`;
  if (options.length > MAX_MOUNT_OPTIONS) {
    throw new BerthError('host', `image has too many layers (${chain.length}) for one overlay mount on this kernel`);
  }
  return { rootfs, mode: 'overlay', overlayOptions: options };
}

/**
 * Unmounts (overlay) and removes a container's root, upper and work dirs. The monitor unmounts after the
 * exit, so umount(8) runs only when it could not (killed, or a start that never got that far).
 */
export function removeRootfs(dir: string): void {
  const rootfs = path.join(dir, 'rootfs');
  if (isMountPoint(rootfs)) {
    try {
      execFileSync('umount', [rootfs], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch {
      // Busy (a process still holds it): detach it; the kernel frees it when the last user goes.
      execFileSync('umount', ['-l', rootfs], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
  }
  for (const d of ['rootfs', 'upper', 'work']) fs.rmSync(path.join(dir, d), { recursive: true, force: true });
}

export function isMountPoint(p: string): boolean {
  const real = fs.existsSync(p) ? fs.realpathSync(p) : p;
  return parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).some((m) => m.mountPoint === real);
}
