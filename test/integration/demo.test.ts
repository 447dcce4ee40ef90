import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, requireBuilt } from '../helpers/dist.js';

// The README's first line ends in scripts/demo.sh: it must really run berth's main job end to end.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-demo-'));
const demo = (...args: string[]) => spawnSync('bash', [path.join(REPO, 'scripts/demo.sh'), ...args], { encoding: 'utf8', env: { ...process.env, BERTH_DEMO_DIR: dir }, timeout: 240_000 });

afterAll(() => {
  demo('stop');
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('scripts/demo.sh', () => {
  it('brings up broker, registry and agent, deploys the example app, shows it reported, running and sending telemetry', () => {
    requireBuilt();
    const r = demo();
    expect(r.stderr + r.stdout).not.toMatch(/demo: not applied/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/"revision": 1,\s+"status": "applied"/);
    expect(r.stdout).toMatch(/"state": "running"/);
    expect(r.stdout).toMatch(/hello from berth on x86_64/);
    expect(r.stdout).toMatch(/"host":\{/);
    const stopped = demo('stop');
    expect(stopped.status).toBe(0);
    for (const p of ['agent.pid', 'mosquitto.pid', 'registry.pid']) expect(fs.existsSync(path.join(dir, p))).toBe(false);
  }, 300_000);
});
