import { spawn, type ChildProcess } from 'node:child_process';
import { runBerth } from './berth-cli.js';
import { BERTH_BIN } from './dist.js';

/**
 * A `berth fleet serve` process for tests (the built bin/berth, as users run it): started on a free
 * loopback port (`--listen 127.0.0.1:0`; the service prints the address it bound), stopped with
 * SIGTERM, or killed with SIGKILL to test a crash.
 */
export interface ServiceProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  logs(): string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash: nothing is flushed or closed) and wait for the exit. */
  kill9(): Promise<void>;
}

export async function startService(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ServiceProcess> {
  const proc = spawn(BERTH_BIN, ['fleet', 'serve', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  const exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`berth fleet serve did not start within 30 s:\n${log}`)), 30_000);
    proc.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /listening on (\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`berth fleet serve exited (${proc.exitCode ?? proc.signalCode}):\n${log}`));
    });
  });
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return { proc, url, logs: () => log, stop: () => end('SIGTERM'), kill9: () => end('SIGKILL') };
}

/** `berth fleet token create`: the printed token. */
export async function createToken(scope: 'read' | 'deploy' | 'admin', data: string, db?: string): Promise<string> {
  const r = await runBerth(['fleet', 'token', 'create', '--data', data, '--scope', scope, ...(db !== undefined ? ['--db', db] : [])]);
  if (r.code !== 0) throw new Error(`berth fleet token create failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

/** A JSON API call; returns the status, the parsed body and the response headers. */
export async function api(base: string, method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(opts.token !== undefined && { authorization: `Bearer ${opts.token}` }),
      ...(opts.body !== undefined && { 'content-type': 'application/json' }),
      ...opts.headers,
    },
    ...(opts.body !== undefined && { body: JSON.stringify(opts.body) }),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics, static files): the text
  }
  return { status: res.status, body, headers: res.headers };
}
