import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { BERTH_BIN, requireBuilt } from './dist.js';
import { pushBusyboxImage } from './images/build.js';
import { startRegistry, type RegistryInstance } from './services/registry.js';

export interface BerthResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The verbs-*.test.ts files' world: a loopback registry with one busybox image, pulled into a fresh
 * state root; everything left running is removed after. `berth`/`berthIn` run bin/berth on that root.
 */
export class VerbsEnv {
  registry!: RegistryInstance;
  root!: string;
  img!: string;

  /** Registers the file's beforeAll/afterAll; `repo` names the image in the registry. */
  constructor(repo: string) {
    beforeAll(async () => {
      requireBuilt();
      this.registry = await startRegistry();
      await pushBusyboxImage(this.registry, repo, 'v1');
      this.img = `${this.registry.host}/${repo}:v1`;
      this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-verbs-'));
      expect(this.berth('pull', '-q', this.img).code).toBe(0);
    });
    afterAll(async () => {
      const left = JSON.parse(this.berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
      if (left.length > 0) this.berth('rm', '-f', ...left.map((c) => c.name));
      await this.registry?.stop();
      fs.rmSync(this.root, { recursive: true, force: true });
    });
  }

  berth(...args: string[]): BerthResult {
    return this.berthIn(undefined, ...args);
  }

  /** `berth ARGS…` with `input` (text or bytes) on its stdin; stdout as text unless `binary`. */
  berthIn(input: string | Buffer | undefined, ...args: string[]): BerthResult {
    const r = spawnSync(BERTH_BIN, ['--root', this.root, ...args], { encoding: 'utf8', env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' }, ...(input !== undefined && { input }), maxBuffer: 256 << 20 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** `berth ARGS…` with its stdout as bytes (a tar stream). */
  berthBytes(...args: string[]): { code: number | null; stdout: Buffer; stderr: string } {
    const r = spawnSync(BERTH_BIN, ['--root', this.root, ...args], { env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' }, maxBuffer: 256 << 20 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
  }

  /** A background `berth ARGS…` whose output is collected; `done` resolves with its exit code. */
  background(...args: string[]) {
    const p = spawn(BERTH_BIN, ['--root', this.root, ...args], { env: { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    p.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    const done = new Promise<number | null>((resolve) => p.once('close', resolve));
    return { p, out, done };
  }
}

/** Waits for a condition another process brings about (output of a background berth). */
export async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs until its stop signal, then exits 0. */
export const SERVICE = ['sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"];
