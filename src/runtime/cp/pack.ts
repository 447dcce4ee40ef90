import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/** major/minor of a device number as glibc's gnu_dev_major/minor split it. */
const major = (rdev: number): number => ((rdev >> 8) & 0xfff) | ((rdev / 2 ** 32) & ~0xfff);
const minor = (rdev: number): number => (rdev & 0xff) | ((rdev >> 12) & 0xfff00);

function header(name: string, st: fs.Stats) {
  return { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
}

/**
 * A tar stream of the tree at `hostPath`, its entries named under `top` (`''`: the tree's contents
 * without a top entry, for docker cp's `SRC/.`). Symlinks are packed as symlinks, never followed;
 * hard-linked files are packed once each (as regular files); sockets are left out (tar has none).
 * Packing is lazy: the tree is read as the consumer reads the stream.
 */
export function packTree(hostPath: string, top: string): Readable {
  const pack = tar.pack();
  const add = async (p: string, name: string): Promise<void> => {
    const st = fs.lstatSync(p);
    if (st.isDirectory()) {
      if (name !== '') pack.entry({ ...header(`${name}/`, st), type: 'directory' });
      for (const child of fs.readdirSync(p).sort()) await add(path.join(p, child), name === '' ? child : `${name}/${child}`);
    } else if (st.isSymbolicLink()) {
      pack.entry({ ...header(name, st), type: 'symlink', linkname: fs.readlinkSync(p) });
    } else if (st.isFile()) {
      const entry = pack.entry({ ...header(name, st), type: 'file', size: st.size });
      await pipeline(fs.createReadStream(p), entry);
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const type = st.isFIFO() ? 'fifo' : st.isBlockDevice() ? 'block-device' : 'character-device';
      pack.entry({ ...header(name, st), type, devmajor: major(st.rdev), devminor: minor(st.rdev) });
    }
  };
  add(hostPath, top).then(() => pack.finalize(), (err: unknown) => pack.destroy(err as Error));
  return pack as unknown as Readable;
}
