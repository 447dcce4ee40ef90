import fs from 'node:fs';

/** The pids of the aardvark-dns processes serving config directory `dir` (its path is in their argv). */
export function aardvarksOf(dir: string): number[] {
  return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((e) => {
    try {
      return fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').includes(dir);
    } catch {
      return false;
    }
  }).map(Number);
}
