// Agent versions for the self-update tests (docs/upgrade.md): bundle directories made from this
// checkout's build (a real agent under another version number) or from a one-line script (an agent
// that exits at start), an install prefix with the launcher, and the launcher run the way systemd's
// Restart=always runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from './dist.js';

/**
 * A bundle directory at `dir` for berth `version`. `real`: bin/berth and dist/bundle copied from this
 * build (Node, node_modules, native/ and board-profiles/ linked: the amd64 host provides them), so it
 * is a working agent that reports `version`. `exits`: bin/berth exits with status 3 at once.
 */
export function makeBundleDir(dir: string, version: string, kind: 'real' | 'exits'): string {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'berth-bundle.json'), JSON.stringify({ arch: 'amd64', node: process.versions.node, berth: version }));
  if (kind === 'exits') {
    fs.writeFileSync(path.join(dir, 'bin', 'berth'), '#!/bin/sh\necho "broken agent $*" >&2\nexit 3\n', { mode: 0o755 });
    return dir;
  }
  fs.copyFileSync(path.join(REPO, 'bin', 'berth'), path.join(dir, 'bin', 'berth'));
  fs.cpSync(path.join(REPO, 'dist', 'bundle'), path.join(dir, 'dist', 'bundle'), { recursive: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as Record<string, unknown>;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...pkg, version }));
  for (const linked of ['node_modules', 'native', 'board-profiles']) fs.symlinkSync(path.join(REPO, linked), path.join(dir, linked));
  return dir;
}

/** An install prefix as berth flash lays it out: launch/berth-launch, versions/<first>, current → it. */
export function makePrefix(prefix: string, first: string, bundleDir: string): void {
  fs.mkdirSync(path.join(prefix, 'launch'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'scripts', 'berth-launch'), path.join(prefix, 'launch', 'berth-launch'));
  fs.chmodSync(path.join(prefix, 'launch', 'berth-launch'), 0o755);
  fs.mkdirSync(path.join(prefix, 'versions'), { recursive: true });
  fs.cpSync(bundleDir, path.join(prefix, 'versions', first), { recursive: true, verbatimSymlinks: true });
  fs.symlinkSync(path.join('versions', first), path.join(prefix, 'current'));
}

/**
 * The launcher under a stand-in for systemd's Restart=always: started again whenever it exits (the
 * agent exits 75 to be restarted after an upgrade) until stop(). Collects the agents' JSON log lines.
 */
export class LauncherService {
  readonly lines: Array<Record<string, any>> = [];
  readonly stderr: string[] = [];
  private proc: ChildProcess | undefined;
  private stopped = false;
  starts = 0;

  /**
   * `opts.command`: what to start each time (default the prefix's launcher, with BERTH_PREFIX); a flat
   * install's test reads it from its unit file, as systemd does after a daemon-reload.
   */
  constructor(private readonly prefix: string, private readonly args: readonly string[], private readonly opts: { command?: () => string; env?: NodeJS.ProcessEnv } = {}) {}

  start(): void {
    this.starts++;
    const command = this.opts.command?.() ?? path.join(this.prefix, 'launch', 'berth-launch');
    const env = { ...process.env, ...(this.opts.command ? {} : { BERTH_PREFIX: this.prefix }), ...this.opts.env };
    const proc = spawn(command, this.args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.proc = proc;
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const l of parts) if (l.startsWith('{')) this.lines.push(JSON.parse(l) as Record<string, any>);
    });
    proc.stderr!.on('data', (d: Buffer) => this.stderr.push(d.toString()));
    proc.once('exit', () => {
      if (!this.stopped && this.proc === proc) setTimeout(() => !this.stopped && this.start(), 200);
    });
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** What the upgrader's restarter does in production through systemd: stop the service; it comes back. */
  async restart(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    // The exit handler starts the launcher again.
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
}
