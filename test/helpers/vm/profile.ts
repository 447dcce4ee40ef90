import fs from 'node:fs';
import path from 'node:path';
import { REPO } from '../dist.js';

/**
 * A board profile for the VM that copies a real board's memory policy (reserve, per-container defaults)
 * but matches qemu's DMI model and runs amd64 images: "a Zero 2 W–like board" on x86 TCG.
 */
export function writeVmProfile(dir: string, like = 'rpi-zero-2-w'): string {
  const base = JSON.parse(fs.readFileSync(path.join(REPO, 'board-profiles', `${like}.json`), 'utf8')) as Record<string, unknown>;
  const id = `vm-${like}`;
  const profile = {
    ...base,
    $schema: undefined,
    id,
    name: `QEMU VM with the ${String(base.name)} memory policy`,
    match: { model: '^(QEMU|Standard PC)' },
    platforms: { amd64: ['linux/amd64'] },
    kernelCmdline: undefined,
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${id}.json`), JSON.stringify(profile, null, 2));
  return dir;
}
