import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

// Runtimes live in sbin on some distributions, which is not on every user's PATH.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Finds an executable on `searchPath` (then the standard system dirs, unless `strict`). */
export function which(name: string, searchPath = process.env.PATH ?? '', strict = false): string | undefined {
  const dirs = searchPath.split(':').filter(Boolean);
  if (!strict) dirs.push(...EXTRA_DIRS);
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** First line of `<exe> --version`, or undefined if it does not answer within the timeout. */
export function versionOf(exe: string, timeoutMs = 5000): string | undefined {
  const r = spawnSync(exe, ['--version'], { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) return undefined;
  return r.stdout.split('\n').find((l) => l.trim() !== '')?.trim();
}
