import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../errors.js';
import { syscalls, type Syscalls } from '../image/unpack/sys.js';
import type { VolumeMount } from './options.js';

/**
 * Confined bind sources (RunOptions.confineBinds, issue 18): a container deployed by the fleet may bind
 * only from the host directories its device's deploy policy allows (src/agent/policy.ts bindRoots).
 * The agent checks that when the desired state arrives, but the directories it allows are often
 * mounted read-write into containers, and a container that can write there can swap a path component
 * for a symlink afterwards: before the create, or before any later restart (every start mounts again).
 * The runtime (crun, runc) would follow that symlink out of the allowed directory.
 *
 * So the check is repeated where it cannot be raced: at every start, each confined bind source is opened
 * once (O_PATH, following symlinks as the runtime would), the kernel is asked where the opened object
 * really is (/proc/self/fd/N), and that object, not the path, is bind-mounted (through the same magic
 * link) onto `<container dir>/binds/<n>`: a directory only berth writes, so no component of it can be
 * swapped. The container's spec names that staging path (written at create), the runtime binds it, and
 * the staging mount is detached once the runtime has made its own copy in the container's namespace.
 * Whatever a symlink says after the open changes nothing: the checked object is the mounted object.
 *
 * Why not give the runtime /proc/<pid>/fd/N directly: runc and crun mount inside the container's new
 * mount namespace, and the kernel refuses (EINVAL) to bind a mount from another namespace. And why not
 * re-check the realpath just before create: the runtime resolves the path again later, so the window
 * only narrows.
 */

/** <fcntl.h> O_PATH: the same value on x86_64, arm and arm64; Node's fs.constants lacks it. */
const O_PATH = 0o10000000;

/** `p` is `root` or below it (both absolute, normalized): a prefix match on whole components. */
export function isBeneath(p: string, root: string): boolean {
  const base = path.resolve(root);
  return p === base || p.startsWith(base.endsWith('/') ? base : `${base}/`);
}

/** Each root as written and, where it exists, as its real path (a state root on a symlinked /var). */
export function realRoots(roots: readonly string[]): string[] {
  return roots.flatMap((r) => {
    try {
      return [path.resolve(r), fs.realpathSync(r)];
    } catch {
      return [path.resolve(r)];
    }
  });
}

/** Where bind `n` (its index among the container's volumes) is staged for the runtime. */
const stagePath = (dir: string, n: number): string => path.join(dir, 'binds', String(n));

function outside(v: VolumeMount, real: string, roots: readonly string[]): BerthError {
  return new BerthError('auth', `bind mount ${v.source}:${v.target} leads to ${real}, outside the host directories this container may bind from (${roots.join(', ')})`, {
    hint: 'a symlink in the source path leads out (planted or swapped after the deploy was checked, by a container that has the directory mounted?); the device deploy policy allows the app data directory and deployPolicy.bindPaths',
  });
}

/** `v.source` opened (O_PATH, symlinks followed) and the real path of what was opened; the caller closes `fd`. */
function openChecked(v: VolumeMount, roots: readonly string[]): { fd: number; dir: boolean } {
  let fd: number;
  try {
    fd = fs.openSync(v.source, O_PATH);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new BerthError('notFound', `-v ${v.source}:${v.target}: host path ${v.source} does not exist`);
    throw new BerthError('host', `cannot open bind source ${v.source}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const real = fs.readlinkSync(`/proc/self/fd/${fd}`);
    const allowed = realRoots(roots);
    // " (deleted)": the object was unlinked after the open; refused like any other surprise.
    if (real.endsWith(' (deleted)') || !allowed.some((r) => isBeneath(real, r))) throw outside(v, real, roots);
    return { fd, dir: fs.fstatSync(fd).isDirectory() };
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

/**
 * An empty directory or file at `p` (what a bind of a directory or a file needs as its target). Never
 * removes anything recursively: `p` was a mount point, and a recursive removal through a mount left
 * there would delete the bind source's content.
 */
function placeholder(p: string, dir: boolean): void {
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  if (st && st.isDirectory() === dir) return;
  if (st?.isDirectory()) fs.rmdirSync(p);
  else if (st) fs.unlinkSync(p);
  if (dir) fs.mkdirSync(p, { mode: 0o700 });
  else fs.writeFileSync(p, '', { mode: 0o600 });
}

/** Detaches every mount stacked on `p` (starts killed twice leave two). */
function detachAll(p: string, sys: Syscalls): void {
  while (sys.detachMount(p)) {
    // one layer per call
  }
}

/**
 * The volumes as the container's spec should name them, made ready at create: a missing bind source
 * with `createHostPath` is created (docker's `-v`); when `roots` is given (a confined container), the
 * nearest existing ancestor of such a source must already lie beneath them, every bind source is
 * checked now (an early, clear refusal) and named by its staging path, whose placeholder is made here.
 * Call before the spec is built; the caller removes `dir` on failure.
 */
export function prepareBindSources(dir: string, volumes: readonly VolumeMount[], roots: readonly string[] | undefined): VolumeMount[] {
  return volumes.map((v, n) => {
    if (v.kind !== 'bind') return v;
    if (v.createHostPath && !fs.existsSync(v.source)) {
      // mkdir -p follows symlinks: the part that exists must already lie beneath the roots.
      if (roots) fs.closeSync(openChecked({ ...v, source: existingAncestor(v.source) }, roots).fd);
      fs.mkdirSync(v.source, { recursive: true, mode: 0o755 });
    }
    if (!roots) return v;
    const { fd, dir: isDir } = openChecked(v, roots);
    fs.closeSync(fd);
    placeholder(stagePath(dir, n), isDir);
    return { ...v, source: stagePath(dir, n) };
  });
}

/** The longest leading part of `p` that exists. */
function existingAncestor(p: string): string {
  let q = path.resolve(p);
  while (!fs.existsSync(q) && q !== '/') q = path.dirname(q);
  return q;
}

/** Staged bind sources of a starting container; `release` once the runtime has mounted them (or failed). */
export interface PinnedBinds {
  release(): void;
}

/**
 * Pins every bind source of a confined container for one start: opened, checked beneath `roots`, and
 * bind-mounted from the opened object onto its staging path (see the top of this file). Throws `auth`
 * when a source now leads outside, `notFound` when it is gone; nothing stays mounted when it throws.
 */
export function pinBindSources(dir: string, volumes: readonly VolumeMount[], roots: readonly string[], sys: Syscalls = syscalls()): PinnedBinds {
  const staged: string[] = [];
  const release = (): void => {
    for (const p of staged.splice(0)) detachAll(p, sys);
  };
  try {
    volumes.forEach((v, n) => {
      if (v.kind !== 'bind') return;
      const target = stagePath(dir, n);
      // A start that died half-way (a killed agent) may have left the previous pin mounted.
      detachAll(target, sys);
      const { fd, dir: isDir } = openChecked(v, roots);
      try {
        placeholder(target, isDir);
        sys.bindMount(`/proc/self/fd/${fd}`, target);
        staged.push(target);
      } finally {
        fs.closeSync(fd);
      }
    });
  } catch (err) {
    release();
    throw err;
  }
  return { release };
}

/** Detaches whatever a killed start left staged, so removing the container's directory never reaches into a bind source. */
export function releaseBindSources(dir: string, sys?: Syscalls): void {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(dir, 'binds'));
  } catch {
    return; // not a confined container: nothing to load libc for
  }
  for (const n of names) detachAll(path.join(dir, 'binds', n), sys ?? syscalls());
}
