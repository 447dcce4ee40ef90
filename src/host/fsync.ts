import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** fsyncs a directory so a rename or unlink inside it survives power loss. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Writes a file atomically: temp file in the same dir (created with `mode`), fsync, rename over the
 * target, fsync the dir. A crash leaves the old file or the new one, never a mix; a failure leaves no
 * temp file behind. `durable: false` skips both fsyncs: still all-or-nothing for readers and after
 * kill -9 (rename is atomic), but a power cut may leave an empty or missing file; only for files
 * whose loss costs nothing.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644, opts: { durable?: boolean } = {}): void {
  const durable = opts.durable ?? true;
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      fs.writeFileSync(fd, data);
      if (durable) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  if (durable) fsyncDir(dir);
}
