import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findOrphanAardvarks } from '../../src/network/aardvark-orphans.js';
import { holdLock, lockedCommand } from '../../src/network/host-lock.js';
import { which } from '../../src/host/which.js';
import { variantHost } from '../helpers/host-tree.js';

const CONFIG = '/run/berth/network/netavark';
const stat = (pid: number, comm: string, start: number) => `${pid} (${comm}) S 1 ${pid} ${pid} 0 -1 4194624 0 0 0 0 0 0 0 0 20 0 1 0 ${start} 1000 10 0\n`;
const cmdline = (...argv: string[]) => `${argv.join('\0')}\0`;

describe('orphaned aardvark-dns', () => {
  it('are the processes serving berth\'s config dir other than the pid file\'s; another tool\'s, other programs and the current one are not', () => {
    const { host, dir, cleanup } = variantHost(undefined, {
      // the pid file's server
      'proc/100/cmdline': cmdline('/usr/lib/podman/aardvark-dns', '--config', `${CONFIG}/aardvark-dns`, '-p', '53', 'run'),
      'proc/100/stat': stat(100, 'aardvark-dns', 5000),
      // an orphan (its command name with a space and parentheses does not shift the fields)
      'proc/200/cmdline': cmdline('/usr/libexec/podman/aardvark-dns', '--config', `${CONFIG}/aardvark-dns/`, '-p', '53', 'run'),
      'proc/200/stat': stat(200, 'aardvark (dns) x', 4000),
      // podman's own
      'proc/300/cmdline': cmdline('/usr/lib/podman/aardvark-dns', '--config', '/run/containers/networks/aardvark-dns', '-p', '53', 'run'),
      'proc/300/stat': stat(300, 'aardvark-dns', 4500),
      // a program that only mentions the dir
      'proc/400/cmdline': cmdline('/bin/cat', '--config', `${CONFIG}/aardvark-dns`),
      'proc/400/stat': stat(400, 'cat', 4600),
      'proc/self': 'not a pid',
    });
    try {
      // The pid file is berth's own (not a host read): written where the config dir is, here under the tree.
      const config = path.join(dir, CONFIG);
      fs.mkdirSync(path.join(config, 'aardvark-dns'), { recursive: true });
      fs.writeFileSync(path.join(config, 'aardvark-dns', 'aardvark.pid'), '100');
      for (const pid of [100, 200]) {
        const f = path.join(dir, `proc/${pid}/cmdline`);
        fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replaceAll(CONFIG, config));
      }
      expect(findOrphanAardvarks(host, config)).toEqual([{ pid: 200, startTime: '4000' }]);
      // Without a pid file every server of the dir is an orphan.
      fs.rmSync(path.join(config, 'aardvark-dns', 'aardvark.pid'));
      expect(findOrphanAardvarks(host, config).map((p) => p.pid).sort()).toEqual([100, 200]);
    } finally {
      cleanup();
    }
  });
});

describe('the netavark lock (flock(1))', () => {
  const flock = which('flock', process.env.PATH ?? '');

  it('wraps a command so it runs holding the lock, without passing the lock to it', () => {
    expect(lockedCommand({ flock: '/usr/bin/flock', file: '/run/x.lock' }, '/usr/lib/podman/netavark', ['setup', '/run/netns/a'])).toEqual({
      command: '/usr/bin/flock', args: ['-o', '/run/x.lock', '/usr/lib/podman/netavark', 'setup', '/run/netns/a'],
    });
  });

  it.runIf(flock !== undefined)('is held until released: a locked command waits for it', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-lock-')), 'sub', 'l.lock');
    const lock = { flock: flock!, file };
    const release = await holdLock(lock);
    // -n: fail at once instead of waiting while someone holds it.
    expect(spawnSync(flock!, ['-n', file, 'true']).status).toBe(1);
    await release();
    expect(spawnSync(flock!, ['-n', file, 'true']).status).toBe(0);
    const { command, args } = lockedCommand(lock, 'sh', ['-c', 'echo ran']);
    expect(spawnSync(command, args, { encoding: 'utf8' }).stdout).toBe('ran\n');
    fs.rmSync(path.dirname(path.dirname(file)), { recursive: true, force: true });
  });
});
