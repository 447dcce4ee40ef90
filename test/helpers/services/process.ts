import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

const LOG_LIMIT = 64 * 1024;
const READY_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 100;
const STOP_GRACE_MS = 5_000;

// Daemons (and their temp dirs) must never outlive the test worker, even when a test forgets
// stop() or the run aborts. One registry per process: vitest may evaluate this module once per
// test file in the same worker. Maps each live child to the temp dir to remove with it.
const LIVE_KEY = Symbol.for('berth.test.liveDaemons');
const globalRef = globalThis as { [LIVE_KEY]?: Map<ChildProcess, string | undefined> };
const live: Map<ChildProcess, string | undefined> = (globalRef[LIVE_KEY] ??= (() => {
  const map = new Map<ChildProcess, string | undefined>();
  process.once('exit', () => {
    for (const [child, dir] of map) {
      child.kill('SIGKILL');
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });
  return map;
})());

/** Keeps the last LOG_LIMIT characters of a daemon's stdout+stderr for error messages. */
class RingLog {
  private chunks: string[] = [];
  private size = 0;
  push(chunk: string): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > LOG_LIMIT && this.chunks.length > 1) this.size -= this.chunks.shift()?.length ?? 0;
  }
  text(): string {
    return this.chunks.join('').slice(-LOG_LIMIT);
  }
}

/** A daemon that failed to become ready; `logs` holds its captured output. */
export class DaemonStartError extends Error {
  constructor(
    message: string,
    readonly logs: string,
  ) {
    super(`${message}\n--- captured output ---\n${logs || '(none)'}`);
    this.name = 'DaemonStartError';
  }
}

export interface DaemonOptions {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  /** Temp dir removed on process exit if the daemon was never stopped (stop() leaves it to the caller). */
  tempDir?: string;
  /** Readiness probe; thrown errors count as "not ready yet". Gets the captured output so far. */
  ready: (logs: string) => Promise<boolean>;
  readyTimeoutMs?: number;
}

export interface Daemon {
  readonly pid: number;
  logs(): string;
  exited(): boolean;
  /** SIGTERM, wait up to 5 s, then SIGKILL. Idempotent. */
  stop(): Promise<void>;
}

/** Spawns a daemon and resolves once `ready` succeeds; rejects (after killing it) otherwise. */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const log = new RingLog();
  const child = spawn(opts.command, opts.args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  live.set(child, opts.tempDir);
  child.stdout?.setEncoding('utf8').on('data', (d: string) => log.push(d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => log.push(d));

  let exitInfo: string | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    // 'close', not 'exit': it fires after stdout/stderr drained, so the error message (and the
    // "address already in use" check in withPortRetry) sees the daemon's last words.
    child.once('close', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `code ${code}`;
      live.delete(child);
      resolve();
    });
    // Spawn failures (ENOENT, EACCES) emit 'error' and never 'exit'.
    child.once('error', (err) => {
      exitInfo ??= `spawn error: ${err.message}`;
      live.delete(child);
      resolve();
    });
  });

  const stop = async (): Promise<void> => {
    if (exitInfo !== undefined) return;
    child.kill('SIGTERM');
    const timedOut = await Promise.race([exitPromise.then(() => false), sleep(STOP_GRACE_MS, true)]);
    if (timedOut) {
      child.kill('SIGKILL');
      await exitPromise;
    }
  };

  // Spawn failures surface asynchronously; settle that before the first probe.
  await Promise.race([new Promise((resolve) => child.once('spawn', resolve)), exitPromise]);
  const deadline = Date.now() + (opts.readyTimeoutMs ?? READY_TIMEOUT_MS);
  for (;;) {
    // Check for exit before probing so a daemon that failed to bind is not mistaken for ready
    // because something else already answers on its port.
    if (exitInfo !== undefined) {
      throw new DaemonStartError(`${opts.name} exited during startup (${exitInfo})`, log.text());
    }
    const ok = await opts.ready(log.text()).catch(() => false);
    if (ok && exitInfo === undefined) break;
    if (Date.now() >= deadline) {
      await stop();
      throw new DaemonStartError(`${opts.name} not ready after ${opts.readyTimeoutMs ?? READY_TIMEOUT_MS} ms`, log.text());
    }
    await sleep(POLL_INTERVAL_MS);
  }

  return {
    pid: child.pid ?? -1,
    logs: () => log.text(),
    exited: () => exitInfo !== undefined,
    stop,
  };
}

/**
 * Runs `start` on a fresh free port, retrying once with another port when the daemon lost the
 * race for it (freePort closes its probe socket before the daemon binds).
 */
export async function withPortRetry<T>(start: (port: number) => Promise<T>): Promise<T> {
  try {
    return await start(await freePort());
  } catch (err) {
    if (err instanceof DaemonStartError && /address already in use/i.test(err.logs)) {
      return start(await freePort());
    }
    throw err;
  }
}

/** First executable among `candidates`, or an error telling how to install it. */
export function findBinary(name: string, candidates: string[]): string {
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // try the next candidate
    }
  }
  throw new Error(`${name} not found (looked in ${candidates.join(', ')}); run: sudo bash scripts/setup.sh`);
}
