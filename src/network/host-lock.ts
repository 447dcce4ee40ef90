import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';

/**
 * One host-wide lock file held through util-linux's flock(1), for what separate berth processes (the
 * agent, the CLI, tests) must not do at once: netavark's setup and teardown. netavark 1.4 checks
 * aardvark-dns's pid file and starts a server outside its own commit lock, so concurrent setups from
 * separate processes each start one (measured: 6 parallel setups left 2–3 aardvark-dns, all but the
 * pid file's orphaned, later answering NXDOMAIN on the gateway). podman holds its network lock around
 * every netavark call for the same reason; this is berth's.
 *
 * flock(1) rather than flock(2) through FFI: loading libc through koffi costs 45–75 ms per process,
 * an exec of flock about 2 ms. Always `-o`: the lock's descriptor must not reach netavark's children,
 * or the aardvark-dns it starts would hold the lock for its whole life. The kernel drops the lock with
 * the holder, so a killed berth never leaves it taken. Contract: holders keep it for one netavark run
 * or one short inspection, never across a wait on another lock.
 */
export interface HostLock {
  /** flock(1). */
  readonly flock: string;
  /** The lock file; created by flock if absent. Must not be a file the locked program flocks itself. */
  readonly file: string;
}

/** `argv` run under the lock: the command and arguments to spawn instead. */
export function lockedCommand(lock: HostLock, binary: string, args: readonly string[]): { command: string; args: string[] } {
  return { command: lock.flock, args: ['-o', lock.file, binary, ...args] };
}

/**
 * Takes the lock and keeps it until the returned release is called (or this process dies): flock runs
 * `cat` under the lock, and the echo of a byte written to it says the lock is taken; closing cat's
 * stdin ends it and frees the lock. Waits without polling, as long as the holder keeps it.
 */
export function holdLock(lock: HostLock): Promise<() => Promise<void>> {
  fs.mkdirSync(path.dirname(lock.file), { recursive: true, mode: 0o700 });
  return new Promise((resolve, reject) => {
    const child = spawn(lock.flock, ['-o', lock.file, 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    let held = false;
    const exited = new Promise<void>((done) => child.on('close', () => done()));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new BerthError('host', `cannot run ${lock.flock}: ${err.message}`, { cause: err, hint: 'apt-get install util-linux' })));
    child.stdout.once('data', () => {
      held = true;
      resolve(async () => {
        child.stdin.end();
        await exited;
      });
    });
    child.on('close', (code) => {
      if (!held) reject(new BerthError('host', `cannot lock ${lock.file}: ${stderr.trim() || `flock exit status ${code}`}`));
    });
    child.stdin.write('\n');
  });
}
