import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { which } from '../host/which.js';

/**
 * Where the network tools are. Debian (and Raspberry Pi OS) install netavark and aardvark-dns outside
 * PATH, in podman's helper directory; other distributions use /usr/libexec/podman. One lookup, used
 * by the engine and by berth doctor.
 */
export const HELPER_DIRS = ['/usr/lib/podman', '/usr/libexec/podman', '/usr/local/lib/podman', '/usr/local/libexec/podman'];

/** The executable `name` from podman's helper directories (`helperDirs`), then `searchPath`; undefined when absent. */
export function findHelper(name: 'netavark' | 'aardvark-dns', searchPath: string, helperDirs: readonly string[] = HELPER_DIRS): string | undefined {
  for (const dir of helperDirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return which(name, searchPath);
}

export const INSTALL_HINT = 'apt-get install netavark aardvark-dns iptables (Debian/Raspberry Pi OS; scripts/setup.sh does it)';

/** Like {@link findHelper}, but a missing tool is a `host` error with the install hint. */
export function requireHelper(name: 'netavark' | 'aardvark-dns', searchPath: string): string {
  const found = findHelper(name, searchPath);
  if (found === undefined) throw new BerthError('host', `${name} is not installed: bridge networking needs it`, { hint: INSTALL_HINT });
  return found;
}
