import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../../errors.js';
import { resolveInRoot } from '../spec/user.js';
import type { OciSpec } from '../spec/types.js';

/** A container's root filesystem as the host sees it, with its volumes and binds, until `close`. */
export interface ContainerRoot {
  readonly path: string;
  close(): void;
}

/** The kernel's paths a spec mounts (proc, sysfs, devpts, tmpfs…): not files of the container. */
const isBind = (m: OciSpec['mounts'][number]): boolean => m.type === 'bind' || m.options.some((o) => o === 'bind' || o === 'rbind');

function mount(args: readonly string[]): void {
  try {
    execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new BerthError('host', `mount ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

function unmount(target: string): void {
  try {
    execFileSync('umount', [target], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    // Busy (a copy still reading through it): detached, the kernel frees it with its last user.
    execFileSync('umount', ['-l', target], { stdio: ['ignore', 'ignore', 'pipe'] });
  }
}

/** Makes the mount point `dest` inside `root`, each component resolved inside it (no symlink leaves it). */
function mountPoint(root: string, dest: string, file: boolean): string {
  const parts = dest.split('/').filter(Boolean);
  let host = root;
  for (let i = 1; i <= parts.length; i++) {
    const p = resolveInRoot(root, parts.slice(0, i).join('/'));
    if (p === undefined) throw new BerthError('invalid', `mount point ${dest}: too many symlinks`);
    host = p;
    if (fs.existsSync(host)) continue;
    if (i === parts.length && file) fs.writeFileSync(host, '', { flag: 'wx' });
    else fs.mkdirSync(host, { mode: 0o755 });
  }
  return host;
}

/**
 * docker cp on a container that is not running: its root is mounted at a private directory beside it
 * (`overlayOptions` as the start would, or a bind of the copied root without overlayfs), with the spec's
 * binds (volumes, bind mounts, configs) on it as the runtime would put them, `ro` kept, so a copy sees
 * and writes what the container will. Missing mount points are made, as the runtime makes them at the
 * start. `close` unmounts all and removes the directory.
 */
export function mountStoppedRoot(dir: string, overlayOptions: string | undefined, spec: OciSpec): ContainerRoot {
  // Named for this process: a start checks whether the copy is still going (checkNoCopyMounted).
  const base = fs.mkdtempSync(path.join(dir, `cp-${process.pid}-`));
  const mounted: string[] = [];
  const close = (): void => {
    for (const m of mounted.reverse()) unmount(m);
    mounted.length = 0;
    fs.rmdirSync(base);
  };
  try {
    mount(overlayOptions !== undefined ? ['-t', 'overlay', 'overlay', '-o', overlayOptions, base] : ['--bind', path.join(dir, 'rootfs'), base]);
    mounted.push(base);
    for (const m of spec.mounts.filter(isBind)) {
      if (!m.source || !fs.existsSync(m.source)) continue;
      const target = mountPoint(base, m.destination, !fs.statSync(m.source).isDirectory());
      mount(['--bind', m.source, target]);
      mounted.push(target);
      // `rro` (recursive read-only, what berth gives `:ro` where the kernel has it) is read-only here too.
      if (m.options.includes('ro') || m.options.includes('rro')) mount(['-o', 'remount,bind,ro', target]);
    }
  } catch (err) {
    close();
    throw err;
  }
  return { path: base, close };
}

/** Whether process `pid` exists (EPERM: it does, as another user's). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Before a container in `dir` starts: a `berth cp` that has its stopped root mounted (mountStoppedRoot)
 * shares the writable layer the start would mount, so the start is refused (`conflict`, naming the cp's
 * process) while that process lives. What a killed cp left (its mounts, its directory) is cleared:
 * detached lazily (with every bind on it) and removed, so the start proceeds.
 */
export function checkNoCopyMounted(dir: string, name: string): void {
  for (const entry of fs.readdirSync(dir)) {
    const m = /^cp-(\d+)-/.exec(entry);
    if (!m) continue;
    const base = path.join(dir, entry);
    if (processAlive(Number(m[1]))) {
      throw new BerthError('conflict', `container ${name} cannot start while berth cp (process ${m[1]}) has its stopped root mounted at ${base}`, { hint: `start it when the copy has finished` });
    }
    try {
      execFileSync('umount', ['-l', base], { stdio: ['ignore', 'ignore', 'ignore'] });
    } catch {
      // not mounted: the cp was killed after its unmount, or before its mount
    }
    fs.rmdirSync(base);
  }
}
