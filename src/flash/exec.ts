import { spawn } from 'node:child_process';
import { BerthError, type ErrorCategory } from '../errors.js';

/** Debian package of each external tool flash runs, for the "not found" hint. */
const PACKAGE_OF: Record<string, string> = {
  debugfs: 'e2fsprogs', e2fsck: 'e2fsprogs', mcopy: 'mtools', mtype: 'mtools', mdir: 'mtools', mmd: 'mtools',
  xz: 'xz-utils', make: 'make', npm: 'npm', openssl: 'openssl',
};

export interface ExecOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Category of the BerthError thrown on a non-zero exit (default `host`). */
  readonly category?: ErrorCategory;
}

/**
 * Runs a tool asynchronously and collects its output. Throws BerthError(host) when the tool is not
 * installed, BerthError(opts.category) with the tail of stderr when it exits non-zero.
 */
export function execTool(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<{ stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', (e: NodeJS.ErrnoException) => {
      const pkg = PACKAGE_OF[cmd];
      reject(e.code === 'ENOENT'
        ? new BerthError('host', `${cmd} not found`, { cause: e, ...(pkg !== undefined && { hint: `install it: apt-get install ${pkg} (scripts/setup.sh)` }) })
        : new BerthError('host', `cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.once('close', (code, signal) => {
      if (code === 0) resolve({ stdout: Buffer.concat(out), stderr: err });
      else reject(new BerthError(opts.category ?? 'host', `${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${err.trim().split('\n').slice(-5).join('; ')}`));
    });
  });
}
