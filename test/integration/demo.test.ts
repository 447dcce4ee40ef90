import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, requireBuilt } from '../helpers/dist.js';

// The README's first line ends in scripts/demo.sh: it must really run berth's main job end to end.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-demo-'));
// Asynchronous on purpose: a spawnSync of a few minutes blocks the vitest worker's RPC and fails the run.
function demo(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(REPO, 'scripts/demo.sh'), ...args], { env: { ...process.env, BERTH_DEMO_DIR: dir }, timeout: 240_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

afterAll(async () => {
  await demo('stop');
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('scripts/demo.sh', () => {
  it('brings up broker, registry and agent, deploys the example app, shows it reported, running and sending telemetry', async () => {
    requireBuilt();
    const r = await demo();
    expect(r.stderr + r.stdout).not.toMatch(/demo: not applied/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/"revision": 1,\s+"status": "applied"/);
    expect(r.stdout).toMatch(/"state": "running"/);
    expect(r.stdout).toMatch(/hello from berth on x86_64/);
    expect(r.stdout).toMatch(/"host":\{/);
    const stopped = await demo('stop');
    expect(stopped.status).toBe(0);
    for (const p of ['agent.pid', 'mosquitto.pid', 'registry.pid']) expect(fs.existsSync(path.join(dir, p))).toBe(false);
  }, 300_000);
});
