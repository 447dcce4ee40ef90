import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { BERTH_BIN } from './dist.js';

export interface BerthRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `berth ARGS…` asynchronously (never blocking the vitest worker) and collects its output. */
export function runBerth(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<BerthRun> {
  return new Promise((resolve, reject) => {
    const proc = spawn(BERTH_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.once('error', reject);
    proc.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs a short `berth ARGS…` (ps, inspect, rm: well under a second) synchronously. */
export function berthSync(args: readonly string[], env: NodeJS.ProcessEnv = {}): BerthRun {
  const r = spawnSync(BERTH_BIN, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A long-running `berth ARGS…` (fleet watch) whose stdout lines are collected as they come. */
export function startBerth(args: readonly string[]): { proc: ChildProcess; lines: string[] } {
  const proc = spawn(BERTH_BIN, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  return { proc, lines };
}
