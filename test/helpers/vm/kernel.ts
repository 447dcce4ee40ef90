import fs from 'node:fs';
import path from 'node:path';
import { REPO } from '../dist.js';

/** The guest kernel and busybox that `scripts/setup.sh` extracted into `.cache/vm/<arch>`. */
export interface VmKernel {
  readonly vmlinuz: string;
  readonly modulesDir: string;
  readonly busybox: string;
  readonly version: string;
}

export function findVmKernel(arch = 'amd64', cacheDir = path.join(REPO, '.cache', 'vm', arch)): VmKernel {
  const hint = `run scripts/setup.sh (as root): it fetches Debian's linux-image-${arch} into ${cacheDir}`;
  const boot = path.join(cacheDir, 'boot');
  const vmlinuz = fs.existsSync(boot) ? fs.readdirSync(boot).find((f) => f.startsWith('vmlinuz-')) : undefined;
  if (!vmlinuz) throw new Error(`no guest kernel in ${boot}: ${hint}`);
  const version = vmlinuz.slice('vmlinuz-'.length);
  const modulesDir = path.join(cacheDir, 'lib', 'modules', version);
  const busybox = path.join(cacheDir, 'busybox');
  for (const f of [modulesDir, busybox]) if (!fs.existsSync(f)) throw new Error(`${f} missing: ${hint}`);
  return { vmlinuz: path.join(boot, vmlinuz), modulesDir, busybox, version };
}
