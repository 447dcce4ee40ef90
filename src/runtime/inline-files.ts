import fs from 'node:fs';
import path from 'node:path';
import type { InlineFile, VolumeMount } from './options.js';

/**
 * compose's configs and secrets reach a container as files: their content travels in RunOptions
 * (InlineFile) so the desired state stays the one source, and the engine materializes them here, under
 * the container's own directory, when it creates the container. They go with the container (removed
 * with its directory) and are bound read-only, so a service cannot change what another one reads.
 */

/** The directory under a container's directory that holds its inline files. */
export const INLINE_FILES_DIR = 'files';

/**
 * Writes `files` under `<containerDir>/files/` (0700 directory; each file with its mode, default 0444,
 * and owner) and returns the read-only bind mounts that put them at their targets.
 */
export function writeInlineFiles(containerDir: string, files: readonly InlineFile[] | undefined): VolumeMount[] {
  if (files === undefined || files.length === 0) return [];
  const dir = path.join(containerDir, INLINE_FILES_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o711 });
  return files.map((f, i) => {
    const source = path.join(dir, String(i));
    fs.writeFileSync(source, Buffer.from(f.content, 'base64'), { mode: 0o600 });
    if (f.uid !== undefined || f.gid !== undefined) fs.chownSync(source, f.uid ?? 0, f.gid ?? 0);
    // After the chown: chown clears setuid/setgid bits, and writeFileSync's mode is masked by the umask.
    fs.chmodSync(source, f.mode ?? 0o444);
    return { source, target: f.target, readOnly: true, kind: 'bind' as const };
  });
}
