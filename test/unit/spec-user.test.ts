import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { readRootfsFile, resolveInRoot, resolveUser } from '../../src/runtime/spec/user.js';

let rootfs: string;
let outside: string;
beforeEach(() => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-spec-user-'));
  rootfs = path.join(tmp, 'rootfs');
  outside = path.join(tmp, 'outside');
  fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), [
    'root:x:0:0:root:/root:/bin/sh',
    'app:x:1000:1000:App:/home/app:/bin/sh',
    'svc:x:1001:1000::/srv:/bin/false',
    '# a comment',
    'broken:x:notanumber:0::/:/bin/sh',
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
    '',
  ].join('\n'));
  fs.writeFileSync(path.join(rootfs, 'etc/group'), [
    'root:x:0:',
    'wheel:x:10:root,app',
    'dialout:x:20:app',
    'i2c:x:998:app,svc',
    'app:x:1000:',
    'nogroup:x:65534:',
    '',
  ].join('\n'));
});
afterEach(() => fs.rmSync(path.dirname(rootfs), { recursive: true, force: true }));

const invalid = (fn: () => unknown, re: RegExp) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BerthError);
    expect((e as BerthError).category).toBe('invalid');
    expect((e as BerthError).message).toMatch(re);
    return;
  }
  throw new Error('expected an error');
};

describe('user resolution against the rootfs', () => {
  it('empty = root with its supplementary groups', () => {
    expect(resolveUser(rootfs, '')).toEqual({ uid: 0, gid: 0, additionalGids: [10], home: '/root' });
  });
  it('a name: its uid, primary gid and /etc/group memberships', () => {
    expect(resolveUser(rootfs, 'app')).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 20, 998], home: '/home/app' });
    expect(resolveUser(rootfs, 'svc')).toEqual({ uid: 1001, gid: 1000, additionalGids: [998], home: '/srv' });
  });
  it('name:group and uid:gid: the explicit group, no supplementary groups', () => {
    expect(resolveUser(rootfs, 'app:dialout')).toEqual({ uid: 1000, gid: 20, additionalGids: [], home: '/home/app' });
    expect(resolveUser(rootfs, 'app:4242')).toEqual({ uid: 1000, gid: 4242, additionalGids: [], home: '/home/app' });
    expect(resolveUser(rootfs, '1234:5678')).toEqual({ uid: 1234, gid: 5678, additionalGids: [], home: '/' });
  });
  it('a numeric uid needs no entry; a known uid takes the entry gid', () => {
    expect(resolveUser(rootfs, '4321')).toEqual({ uid: 4321, gid: 0, additionalGids: [], home: '/' });
    expect(resolveUser(rootfs, '1000')).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 20, 998], home: '/home/app' });
    fs.rmSync(path.join(rootfs, 'etc'), { recursive: true });
    expect(resolveUser(rootfs, '1000:1000')).toEqual({ uid: 1000, gid: 1000, additionalGids: [], home: '/' });
    invalid(() => resolveUser(rootfs, 'app'), /unable to find user app.*has none/);
  });
  it('unknown names are invalid', () => {
    invalid(() => resolveUser(rootfs, 'mallory'), /unable to find user mallory/);
    invalid(() => resolveUser(rootfs, 'app:nope'), /unable to find group nope/);
    invalid(() => resolveUser(rootfs, 'app:'), /invalid user/);
    invalid(() => resolveUser(rootfs, 'a:b:c'), /invalid user/);
    invalid(() => resolveUser(rootfs, '99999999999'), /out of range/);
  });
  it('never follows an image symlink out of the rootfs', () => {
    fs.writeFileSync(path.join(outside, 'passwd'), 'mallory:x:0:0::/:/bin/sh\n');
    fs.rmSync(path.join(rootfs, 'etc/passwd'));
    const rel = path.relative(path.join(rootfs, 'etc'), path.join(outside, 'passwd'));
    fs.symlinkSync(rel, path.join(rootfs, 'etc/passwd'));
    invalid(() => resolveUser(rootfs, 'mallory'), /unable to find user/);
    fs.rmSync(path.join(rootfs, 'etc/passwd'));
    fs.symlinkSync(path.join(outside, 'passwd'), path.join(rootfs, 'etc/passwd'));
    invalid(() => resolveUser(rootfs, 'mallory'), /unable to find user/);
  });
  it('resolveInRoot follows symlinks inside the root and clamps ..', () => {
    fs.mkdirSync(path.join(rootfs, 'usr/lib'), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'usr/lib/os-release'), 'ID=test\n');
    fs.symlinkSync('../usr/lib/os-release', path.join(rootfs, 'etc/os-release'));
    fs.symlinkSync('/../../../usr/lib', path.join(rootfs, 'lib'));
    expect(resolveInRoot(rootfs, '/etc/os-release')).toBe(path.join(rootfs, 'usr/lib/os-release'));
    expect(resolveInRoot(rootfs, '/lib/os-release')).toBe(path.join(rootfs, 'usr/lib/os-release'));
    expect(resolveInRoot(rootfs, '/../../etc/passwd')).toBe(path.join(rootfs, 'etc/passwd'));
    expect(readRootfsFile(rootfs, '/lib/os-release')).toBe('ID=test\n');
    fs.symlinkSync('loop', path.join(rootfs, 'loop'));
    expect(resolveInRoot(rootfs, '/loop')).toBeUndefined();
    expect(readRootfsFile(rootfs, '/etc')).toBeUndefined();
  });
});
