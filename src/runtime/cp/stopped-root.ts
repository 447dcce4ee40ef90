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
  const base = fs.mkdtempSync(path.join(dir, 'cp-'));
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
