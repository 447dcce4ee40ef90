import fs from 'node:fs';
import path from 'node:path';

/**
 * Bytes a directory tree takes on disk (du: allocated blocks, each hard-linked inode once), without
 * following symlinks or crossing into other filesystems. A missing tree is 0 bytes.
 */
export function treeSize(root: string): number {
  const seen = new Set<string>();
  let total = 0;
  let dev: number | undefined;
  const walk = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    dev ??= st.dev;
    if (st.dev !== dev) return;
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    total += st.blocks * 512;
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(root);
  return total;
}
