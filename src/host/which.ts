import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

// Runtimes live in sbin on some distributions, which is not on every user's PATH.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** PATH plus the system dirs where daemons and runtimes are installed, deduplicated. */
export function systemSearchPath(envPath = process.env.PATH ?? ''): string {
  return [...new Set([...envPath.split(':').filter(Boolean), ...EXTRA_DIRS])].join(':');
}

/** Finds an executable on a colon-separated search path. */
export function which(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(':').filter(Boolean)) {
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
