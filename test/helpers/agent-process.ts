import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { BERTH_BIN } from './dist.js';
import type { TestFleetKey } from './signing.js';

/** A running `berth agent` and the JSON lines it has logged so far (one object per decision). */
export interface AgentProcess {
  readonly proc: ChildProcess;
  readonly lines: Array<Record<string, any>>;
}

/**
 * Starts `berth --root ROOT agent ARGS…` as users run it, collecting its stdout log lines. With `fleet`,
 * the agent trusts that fleet key (an agent.yaml with its fleetKey, plus `config` keys, in ROOT): what
 * every test of an agent on a broker needs, since the agent accepts only signed messages. `env` replaces
 * the environment (default: this process's).
 */
export function spawnAgent(root: string, args: readonly string[], fleet?: TestFleetKey, config: Record<string, unknown> = {}, env?: NodeJS.ProcessEnv): AgentProcess {
  const withConfig = fleet === undefined ? args : ['--config', fleet.agentConfig(root, config), ...args];
  const proc = spawn(BERTH_BIN, ['--root', root, 'agent', ...withConfig], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const lines: Array<Record<string, any>> = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const l of parts) lines.push(JSON.parse(l) as Record<string, any>);
  });
  return { proc, lines };
}

/** Signals a child and waits for it to exit (at once when it already has). */
export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  await exited;
}

/** Polls `fn` every 100 ms until it returns something other than undefined or false; throws after `ms`. */
export async function until<T>(fn: () => T | undefined | false, ms = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await sleep(100);
  }
}

/** What an agent run with undiciTrap's environment touched (empty: nothing), and that environment. */
export interface UndiciTrap {
  readonly env: NodeJS.ProcessEnv;
  caught(): string;
}

/**
 * This process's environment plus the preload test/helpers/probes/undici-trap.cjs, which ends a berth
 * process (exit 97) at anything that would load Node's undici: `berth agent` runs in V8's lite mode, where
 * undici's WebAssembly is missing and such a touch crashes the agent on Node 22. What it caught is logged
 * to `<dir>/undici-trap.log`.
 */
export function undiciTrap(dir: string): UndiciTrap {
  const log = path.join(dir, 'undici-trap.log');
  const preload = fileURLToPath(new URL('./probes/undici-trap.cjs', import.meta.url));
  return {
    env: { ...process.env, NODE_OPTIONS: `--require ${preload}`, BERTH_UNDICI_TRAP_LOG: log },
    caught: () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''),
  };
}
