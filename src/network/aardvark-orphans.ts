import fs from 'node:fs';
import path from 'node:path';
import { isErrno } from '../errors.js';
import type { HostPaths } from '../host/paths.js';
import { holdLock, type HostLock } from './host-lock.js';

/**
 * aardvark-dns servers of berth's netavark config dir that are not the one its pid file names:
 * orphans (started by racing netavark runs before berth locked them, see host-lock.ts, or left by a
 * pid file removed by hand). Nothing signals them any more, and they keep their sockets on a gateway
 * address: when a later network gets the same gateway, they answer its queries from stale files
 * (NXDOMAIN). Only processes whose command line is `…/aardvark-dns --config <berth's dir>` are
 * candidates, so another tool's aardvark (podman's, under /run/containers) is never touched.
 */

/** One aardvark-dns process: its pid and its start time (clock ticks since boot, /proc/PID/stat field 22). */
export interface DnsProcess {
  readonly pid: number;
  readonly startTime: string;
}

/** The `--config` directory netavark gives aardvark-dns: `<netavark config>/aardvark-dns`. */
export function aardvarkConfigDir(netavarkConfigDir: string): string {
  return path.join(netavarkConfigDir, 'aardvark-dns');
}

/** `pid`'s start time and whether its command line is aardvark-dns with `--config dir`; undefined when it is not (or is gone). */
function aardvarkOf(host: HostPaths, pid: number, dir: string): DnsProcess | undefined {
  let cmdline: string;
  let stat: string;
  try {
    cmdline = fs.readFileSync(host.resolve(`/proc/${pid}/cmdline`), 'utf8');
    stat = fs.readFileSync(host.resolve(`/proc/${pid}/stat`), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ESRCH')) return undefined;
    throw err;
  }
  const argv = cmdline.split('\0');
  const config = argv.indexOf('--config');
  if (path.basename(argv[0] ?? '') !== 'aardvark-dns' || config < 0 || path.resolve(argv[config + 1] ?? '') !== path.resolve(dir)) return undefined;
  // The command name in field 2 may hold spaces and parentheses: the fields after it follow the last ')'.
  const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  return startTime === undefined ? undefined : { pid, startTime };
}

/**
 * The aardvark-dns processes serving `netavarkConfigDir` other than the pid file's. Read-only. The
 * caller must hold the netavark lock, or a server started a moment ago, before its pid file is
 * written, would look orphaned.
 */
export function findOrphanAardvarks(host: HostPaths, netavarkConfigDir: string): DnsProcess[] {
  const dir = aardvarkConfigDir(netavarkConfigDir);
  const current = pidFileOf(dir);
  const orphans: DnsProcess[] = [];
  for (const entry of fs.readdirSync(host.resolve('/proc'))) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === current) continue;
    const p = aardvarkOf(host, pid, dir);
    if (p) orphans.push(p);
  }
  return orphans;
}

/** The pid aardvark-dns wrote in `dir` (it writes it itself at start); undefined without one. */
function pidFileOf(dir: string): number | undefined {
  try {
    return Number.parseInt(fs.readFileSync(path.join(dir, 'aardvark.pid'), 'utf8').trim(), 10);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/**
 * SIGTERM to each orphan that is still the same process (same command line and start time, so a pid
 * reused since the scan is never hit). Returns the pids signalled.
 */
export function killOrphanAardvarks(host: HostPaths, netavarkConfigDir: string, orphans: readonly DnsProcess[]): number[] {
  const dir = aardvarkConfigDir(netavarkConfigDir);
  const killed: number[] = [];
  for (const o of orphans) {
    if (aardvarkOf(host, o.pid, dir)?.startTime !== o.startTime) continue;
    try {
      process.kill(o.pid, 'SIGTERM');
      killed.push(o.pid);
    } catch (err) {
      if (!isErrno(err, 'ESRCH')) throw err;
    }
  }
  return killed;
}

/**
 * Stops every orphaned aardvark-dns of berth's netavark config dir, holding the netavark lock so no
 * berth process is starting one meanwhile. An orphan may hold a gateway's port 53, which the pid
 * file's server then failed to bind: once the orphans are gone, that server is sent SIGHUP, on which
 * aardvark-dns reloads its config and binds every network's address again. Returns the pids stopped.
 */
export async function stopOrphanAardvarks(host: HostPaths, tool: { readonly configDir: string; readonly lock: HostLock }): Promise<number[]> {
  const release = await holdLock(tool.lock);
  try {
    const stopped = killOrphanAardvarks(host, tool.configDir, findOrphanAardvarks(host, tool.configDir));
    if (stopped.length === 0) return stopped;
    await untilGone(host, stopped);
    const dir = aardvarkConfigDir(tool.configDir);
    const current = pidFileOf(dir);
    if (current !== undefined && aardvarkOf(host, current, dir)) process.kill(current, 'SIGHUP');
    return stopped;
  } finally {
    await release();
  }
}

/**
 * Waits (at most 2 s) until the pids have left /proc, so their sockets are closed before the reload.
 * A poll: Node offers no exit event for a process that is not its child (no pidfd).
 */
async function untilGone(host: HostPaths, pids: readonly number[]): Promise<void> {
  for (let i = 0; i < 100 && pids.some((p) => fs.existsSync(host.resolve(`/proc/${p}`))); i++) await new Promise((r) => setTimeout(r, 20));
}
