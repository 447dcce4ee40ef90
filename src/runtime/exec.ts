import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { BerthError } from '../errors.js';
import { CAPABILITY_NUMBERS } from './capabilities.js';
import type { OciRuntime } from './oci-runtime.js';
import { DEFAULT_PATH, replaceOrAppendEnv } from './spec/process.js';
import type { OciProcess } from './spec/types.js';
import { resolveInRoot, resolveUser } from './spec/user.js';

/** What `berth exec` asks for (docker exec's flags). The process is never given a terminal here. */
export interface ExecSpec {
  readonly argv: readonly string[];
  /** `-u`: uid, uid:gid, name or name:group, resolved against the container's own /etc/passwd. Default: the container's user. */
  readonly user?: string;
  /** `-w`: absolute path inside the container. Default: the container's working directory. */
  readonly workdir?: string;
  /** `-e`: `K=V` entries on top of the container's environment. */
  readonly env?: readonly string[];
  /** `--privileged`: every capability for this process. */
  readonly privileged?: boolean;
  /** `-i`: the caller writes the process's stdin; otherwise it reads end-of-file at once. */
  readonly stdin?: boolean;
  /** `-d`: start it and return; its output is discarded and its exit is not waited for. */
  readonly detach?: boolean;
  /**
   * `-t`: a pseudo-terminal, owned by a monitor of the exec's own (Terminals.execTerminal in
   * terminal.ts). `execProcess`, which has pipes only, refuses it with a `usage` error.
   */
  readonly tty?: boolean;
}

/**
 * A process started by `execProcess`. stdout and stderr stay apart (no terminal merges them). `exit`
 * resolves with docker exec's code: the process's own, 126 when the command cannot be executed, 127 when
 * it is not found; a detached process's `exit` is 0 once it started. Streams are null when detached.
 */
export interface ExecProcess {
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly exit: Promise<number>;
  /** Sends a signal to the exec'd process (the CLI forwards SIGINT/SIGTERM). */
  kill(signal: NodeJS.Signals): void;
}

/** docker exec's exit codes when the command never ran. */
export const EXIT_NOT_EXECUTABLE = 126;
export const EXIT_NOT_FOUND = 127;

/** Refuses what this engine cannot do yet, and bad input, naming the flag. */
export function checkExecSpec(spec: ExecSpec): void {
  if (spec.tty) throw new BerthError('usage', 'this exec has pipes, not a terminal', { hint: 'a terminal exec (-t) goes through the engine\'s execTerminal' });
  if (spec.argv.length === 0 || spec.argv[0] === '') throw new BerthError('usage', 'exec needs a command to run in the container');
  if (spec.workdir !== undefined && !spec.workdir.startsWith('/')) throw new BerthError('invalid', `-w/--workdir: "${spec.workdir}" is not an absolute path`);
  for (const e of spec.env ?? []) if (!e.includes('=') || e.startsWith('=')) throw new BerthError('invalid', `-e: invalid environment entry "${e}": expected KEY=VALUE`);
}

const envValue = (env: readonly string[], key: string): string | undefined => env.find((e) => e.startsWith(`${key}=`))?.slice(key.length + 1);

/**
 * Where `argv0` is inside the container, as execvp would look for it: a name with a slash is taken as
 * it is (relative to `cwd`), any other is searched in PATH. `root` is the container's root as the host
 * sees it (/proc/PID/root); symlinks resolve inside it. Returns the verdict docker exec reports.
 */
export function findExecutable(root: string, argv0: string, pathVar: string, cwd: string): { found: true } | { found: false; code: number; message: string } {
  const candidates = argv0.includes('/') ? [path.posix.resolve(cwd, argv0)] : pathVar.split(':').filter(Boolean).map((d) => path.posix.join(d, argv0));
  let sawNotExecutable = false;
  for (const c of candidates) {
    const host = resolveInRoot(root, c);
    if (host === undefined) continue;
    let st: fs.Stats;
    try {
      st = fs.statSync(host);
    } catch {
      continue;
    }
    if (st.isFile() && (st.mode & 0o111) !== 0) return { found: true };
    sawNotExecutable = true;
  }
  if (sawNotExecutable) return { found: false, code: EXIT_NOT_EXECUTABLE, message: `exec: "${argv0}": permission denied` };
  return { found: false, code: EXIT_NOT_FOUND, message: argv0.includes('/') ? `exec: "${argv0}": stat ${argv0}: no such file or directory` : `exec: "${argv0}": executable file not found in $PATH` };
}

/**
 * The OCI process for an exec: the container's own (its rlimits, capabilities, no-new-privileges,
 * AppArmor/SELinux labels, user, env, cwd) with what the spec overrides. `root` is the container's
 * root as the host sees it, for user names and the executable lookup.
 */
export function execProcessSpec(base: OciProcess, spec: ExecSpec, root: string): OciProcess {
  const env = replaceOrAppendEnv(base.env ?? [`PATH=${DEFAULT_PATH}`], spec.env ?? []);
  let user = base.user;
  if (spec.user !== undefined) {
    const u = resolveUser(root, spec.user);
    user = { uid: u.uid, gid: u.gid, ...(u.additionalGids.length > 0 && { additionalGids: [...u.additionalGids] }) };
  }
  const all = Object.keys(CAPABILITY_NUMBERS);
  const capabilities = spec.privileged ? { bounding: all, effective: all, permitted: all, inheritable: [], ambient: [] } : base.capabilities;
  const { terminal: _t, consoleSize: _c, ...rest } = base;
  return { ...rest, terminal: false, args: [...spec.argv], env, cwd: spec.workdir ?? base.cwd, user, ...(capabilities && { capabilities }) };
}

/**
 * The OCI process for an exec in the container whose init is `pid`, or docker's 126/127 verdict when the
 * command cannot run there (found before any runtime runs, so the codes are the same on crun and runc).
 */
export function planExec(pid: number, base: OciProcess, spec: ExecSpec): { readonly proc: OciProcess } | { readonly code: number; readonly message: string } {
  const root = `/proc/${pid}/root`;
  const proc = execProcessSpec(base, spec, root);
  const found = findExecutable(root, spec.argv[0]!, envValue(proc.env ?? [], 'PATH') ?? DEFAULT_PATH, proc.cwd);
  return found.found ? { proc } : { code: found.code, message: found.message };
}

/** A process that never ran: docker exec says why on stderr and exits 126/127. */
function failedExec(code: number, message: string): ExecProcess {
  return { stdin: null, stdout: Readable.from([]), stderr: Readable.from([`${message}\n`]), exit: Promise.resolve(code), kill: () => undefined };
}

/**
 * Runs `<runtime> exec --process FILE ID` for a running container whose init is `pid`. The process
 * file lives in a private temp dir removed once the runtime has read it (at its exit, or at once when
 * detached). Not-found/not-executable commands are caught before the runtime runs, so the codes are
 * docker's on crun and runc alike.
 */
export function spawnExec(rt: OciRuntime, id: string, pid: number, base: OciProcess, spec: ExecSpec): ExecProcess {
  checkExecSpec(spec);
  const plan = planExec(pid, base, spec);
  if (!('proc' in plan)) return failedExec(plan.code, plan.message);
  const { proc } = plan;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-exec-'));
  const file = path.join(dir, 'process.json');
  fs.writeFileSync(file, JSON.stringify(proc), { mode: 0o600 });
  const args = [...rt.globalArgs, 'exec', ...(spec.detach ? ['--detach'] : []), '--process', file, id];
  const child = spawn(rt.path, args, { stdio: [spec.stdin && !spec.detach ? 'pipe' : 'ignore', spec.detach ? 'ignore' : 'pipe', 'pipe'] });
  const exit = new Promise<number>((resolve, reject) => {
    let runtimeErr = '';
    if (spec.detach) child.stderr!.on('data', (d: Buffer) => (runtimeErr += d.toString()));
    child.once('error', (err) => reject(new BerthError('runtime', `${rt.name} exec failed: ${err.message}`, { cause: err })));
    child.once('close', (code, signal) => {
      fs.rmSync(dir, { recursive: true, force: true });
      if (spec.detach && code !== 0) reject(new BerthError('runtime', `${rt.name} exec failed: ${runtimeErr.trim() || `exit ${code}`}`));
      // Killed by a signal: the shell convention docker follows, 128 + the signal's number.
      else resolve(code ?? 128 + (os.constants.signals[signal as NodeJS.Signals] ?? 0));
    });
  });
  return {
    stdin: child.stdin, stdout: spec.detach ? null : child.stdout, stderr: spec.detach ? null : child.stderr, exit,
    kill: (signal) => void child.kill(signal),
  };
}
