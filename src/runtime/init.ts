import { BerthError } from '../errors.js';
import { which } from '../host/which.js';

/**
 * Statically linked inits `--init` can bind into any image (the image's libc does not matter):
 * Debian's `tini` package ships tini-static, Docker's packages docker-init (a static tini too).
 * A dynamically linked tini would fail inside most images, so it is not a candidate.
 */
const INIT_CANDIDATES = ['tini-static', 'docker-init'];
/** Docker's packages keep docker-init out of PATH. */
const DOCKER_LIBEXEC = ['/usr/libexec/docker'];

/**
 * The host's static init binary for `--init`, looked up on `searchPath` and in `extraDirs` (Docker's
 * libexec dir by default). None is a `host` error that says what to install: berth does not ship one.
 */
export function findInitBinary(searchPath: string, extraDirs: readonly string[] = DOCKER_LIBEXEC): string {
  const path = [searchPath, ...extraDirs].join(':');
  for (const name of INIT_CANDIDATES) {
    const found = which(name, path);
    if (found !== undefined) return found;
  }
  throw new BerthError('host', `--init needs a static init binary (${INIT_CANDIDATES.join(' or ')}), and none is installed`, {
    hint: 'apt install tini (it ships /usr/bin/tini-static)',
  });
}
