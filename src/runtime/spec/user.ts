import fs from 'node:fs';
import path from 'node:path';
import { BerthError, isErrno } from '../../errors.js';

/**
 * `--user` / the image's `User` against the rootfs's /etc/passwd and /etc/group, with runc's
 * (libcontainer/user GetExecUser) rules, which Docker uses:
 * - empty → root (0:0);
 * - a numeric uid needs no passwd entry (gid 0 then, or the entry's gid when one exists);
 * - a name must exist in /etc/passwd, a group name in /etc/group (`invalid` otherwise);
 * - supplementary groups come from /etc/group membership only when no group was given explicitly.
 */
export interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: readonly number[];
  /** Home from the passwd entry, `/` when none. */
  readonly home: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const MAX_ID = 2 ** 31 - 1;

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (f.length < 4 || !/^\d+$/.test(f[2] ?? '') || !/^\d+$/.test(f[3] ?? '')) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] || '/' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !/^\d+$/.test(f[2] ?? '')) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

/**
 * Resolves `p` inside `root` as chroot would: symlinks are followed relative to `root`, `..` stops at
 * `root`, so a hostile image's `/etc/passwd -> /../../etc/shadow` never reaches the host. Returns the host
 * path of the final component (which may not exist); undefined after 40 symlinks.
 */
export function resolveInRoot(root: string, p: string): string | undefined {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const c = parts.shift()!;
    if (c === '..') {
      done.pop();
      continue;
    }
    const host = path.join(root, ...done, c);
    let target: string | undefined;
    try {
      if (fs.lstatSync(host).isSymbolicLink()) target = fs.readlinkSync(host);
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
    }
    if (target === undefined) {
      done.push(c);
      continue;
    }
    if (++links > 40) return undefined;
    if (target.startsWith('/')) done.length = 0;
    parts.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return path.join(root, ...done);
}

/** A regular file inside the rootfs (symlinks resolved within it), or undefined when absent or not a file. */
export function readRootfsFile(rootfs: string, p: string, maxBytes = 4 * 1024 * 1024): string | undefined {
  const file = resolveInRoot(rootfs, p);
  if (file === undefined) return undefined;
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'ELOOP')) return undefined;
    throw new BerthError('invalid', `cannot read ${p} in the image: ${(err as Error).message}`, { cause: err });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return undefined;
    if (st.size > maxBytes) throw new BerthError('invalid', `${p} in the image is larger than ${maxBytes} bytes`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function numericId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > MAX_ID) throw new BerthError('invalid', `user/group id ${s} is out of range`);
  return n;
}

/**
 * Resolves a user spec against the passwd/group text (undefined = the file does not exist); `groupAdd`
 * (names or gids) become additional groups.
 */
export function resolveUserFrom(spec: string, passwdText: string | undefined, groupText: string | undefined, groupAdd: readonly string[] = []): ResolvedUser {
  const [userArg = '', groupArg, ...rest] = spec.split(':');
  if (rest.length > 0 || groupArg === '') throw new BerthError('invalid', `invalid user "${spec}": use uid, uid:gid, name or name:group`);
  const passwd = passwdText === undefined ? [] : parsePasswd(passwdText);
  const groups = groupText === undefined ? [] : parseGroup(groupText);

  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  const uidNum = userArg === '' ? 0 : numericId(userArg);
  const entry = uidNum !== undefined ? passwd.find((p) => p.uid === uidNum) : passwd.find((p) => p.name === userArg);
  if (uidNum === undefined && entry === undefined) {
    throw new BerthError('invalid', `unable to find user ${userArg}: no matching entries in the image's /etc/passwd${passwdText === undefined ? ' (the image has none)' : ''}`, {
      hint: 'use a numeric uid[:gid], or a user the image defines',
    });
  }
  if (entry) {
    uid = entry.uid;
    gid = entry.gid;
    home = entry.home;
    name = entry.name;
  } else uid = uidNum!;

  const groupId = (arg: string, what: string): number => {
    const n = numericId(arg);
    if (n !== undefined) return n;
    const g = groups.find((x) => x.name === arg);
    if (!g) throw new BerthError('invalid', `${what}unable to find group ${arg}: no matching entries in the image's /etc/group${groupText === undefined ? ' (the image has none)' : ''}`);
    return g.gid;
  };
  let additionalGids: number[] = [];
  if (groupArg !== undefined) gid = groupId(groupArg, '');
  else if (name !== undefined) additionalGids = groups.filter((g) => g.members.includes(name)).map((g) => g.gid);
  // --group-add comes on top of the user's own groups (Docker's order), named groups from the image.
  additionalGids.push(...groupAdd.map((g) => groupId(g, '--group-add: ')));
  return { uid, gid, additionalGids: [...new Set(additionalGids)].filter((g) => g !== gid), home };
}

/**
 * Resolves a user spec, plus `--group-add` groups, against the rootfs's own /etc/passwd and /etc/group
 * (read safely within it).
 */
export function resolveUser(rootfs: string, spec: string, groupAdd: readonly string[] = []): ResolvedUser {
  return resolveUserFrom(spec, readRootfsFile(rootfs, '/etc/passwd'), readRootfsFile(rootfs, '/etc/group'), groupAdd);
}
