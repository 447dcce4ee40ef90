import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostPaths } from '../../src/host/paths.js';
import { readResolverText, resolverSource, withResolver } from '../../src/network/resolver-source.js';

describe('resolver source (BERTH_RESOLV_CONF)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-resolv-'));
  fs.mkdirSync(path.join(dir, 'etc'));
  fs.writeFileSync(path.join(dir, 'etc', 'resolv.conf'), 'nameserver 192.0.2.53\n');
  const own = path.join(dir, 'own.conf');
  fs.writeFileSync(own, 'nameserver 127.53.0.1\n');
  const host = hostPaths(dir);

  it('defaults to the host\'s /etc/resolv.conf and leaves netavark\'s command alone', () => {
    const src = resolverSource({});
    expect(src).toEqual({});
    expect(readResolverText(src, host)).toBe('nameserver 192.0.2.53\n');
    const cmd = { command: '/usr/bin/flock', args: ['-o', '/run/x.lock', 'netavark', 'setup'] };
    expect(withResolver(src, '/usr/bin/unshare', cmd)).toBe(cmd);
  });

  it('a named file replaces it for containers, and netavark runs where that file is /etc/resolv.conf', () => {
    const src = resolverSource({ BERTH_RESOLV_CONF: own });
    expect(readResolverText(src, host)).toBe('nameserver 127.53.0.1\n');
    expect(withResolver(src, '/usr/bin/unshare', { command: '/usr/bin/flock', args: ['-o', 'l', 'netavark'] })).toEqual({
      command: '/usr/bin/unshare',
      args: ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', own, '/usr/bin/flock', '-o', 'l', 'netavark'],
    });
    // A named file that is gone gives no servers, never the host's ones it replaced.
    expect(readResolverText(resolverSource({ BERTH_RESOLV_CONF: path.join(dir, 'gone') }), host)).toBe('');
  });
});
