import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { execTool } from './exec.js';

/** mtools reads no user config and skips its geometry sanity checks (mkfs tools other than mformat trip them). */
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' };

/**
 * A FAT file system inside an image file at a byte offset, read and edited with mtools (`-i img@@offset`):
 * no root, no loop device. Paths are absolute within the file system ("/cmdline.txt").
 */
export class FatVolume {
  constructor(readonly image: string, readonly offset: number) {}

  private get drive(): string {
    return `${this.image}@@${this.offset}`;
  }

  /** Names in the root directory (as stored: long names where there are any). */
  async rootNames(): Promise<string[]> {
    const { stdout } = await execTool('mdir', ['-b', '-i', this.drive, '::/'], { env: MTOOLS_ENV, category: 'invalid' });
    return stdout.toString().split('\n').filter((l) => l !== '').map((l) => l.replace(/^::\/?/, '').replace(/\/$/, ''));
  }

  /** The file's bytes, or undefined when it does not exist. */
  async readFile(file: string): Promise<Buffer | undefined> {
    const names = await this.rootNames();
    const base = file.replace(/^\//, '');
    if (!base.includes('/') && !names.some((n) => n.toLowerCase() === base.toLowerCase())) return undefined;
    const { stdout } = await execTool('mtype', ['-i', this.drive, `::/${base}`], { env: MTOOLS_ENV, category: 'invalid' });
    return stdout;
  }

  /** Writes (replacing) a file in the root directory or an existing subdirectory. */
  async writeFile(file: string, data: Buffer | string): Promise<void> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-fat-'));
    try {
      const tmp = path.join(dir, 'f');
      await fs.writeFile(tmp, data);
      await execTool('mcopy', ['-o', '-i', this.drive, tmp, `::/${file.replace(/^\//, '')}`], { env: MTOOLS_ENV });
    } catch (err) {
      throw err instanceof BerthError ? new BerthError('resource', `cannot write ${file} to the boot partition: ${err.message}`, { cause: err }) : err;
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
}
