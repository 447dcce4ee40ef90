import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BERTH_BIN, requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';
import { berthSync } from '../helpers/berth-cli.js';

// Local mode: `berth deploy FILE` applies a compose-subset file through the same reconciler the MQTT
// agent uses, with revisions numbered locally.
let registry: RegistryInstance;
let root: string;
let img: string;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'local/app', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/local/app:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-deploy-'));
}, 60_000);
afterAll(async () => {
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await registry?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);
function deploy(yaml: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = path.join(root, `compose-${Date.now()}.yaml`);
  fs.writeFileSync(file, yaml);
  return new Promise((resolve) => {
    const child = spawn(BERTH_BIN, ['--root', root, 'deploy', file]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('berth deploy', () => {
  it('applies a compose file, then a changed one as the next revision', async () => {
    const first = await deploy(`services:\n  web:\n    image: ${img}\n    command: ["sleep", "3600"]\n    mem_limit: 32m\n    stop_grace_period: 1s\nx-berth:\n  update:\n    health_window: 500ms\n`);
    expect(first.stderr).toMatch(/pulling/);
    expect(first.stdout).toBe('revision 1: applied\n');
    expect(first.code).toBe(0);
    const ps1 = JSON.parse(berth('ps', '--json').stdout) as Array<{ name: string }>;
    expect(ps1.map((c) => c.name.split('.')[0])).toEqual(['web']);
    const second = await deploy(`services:\n  web:\n    image: ${img}\n    command: sleep 3601\n    stop_grace_period: 1s\nx-berth:\n  update:\n    health_window: 500ms\n`);
    expect(second.stdout).toBe('revision 2: applied\n');
    const ps2 = JSON.parse(berth('ps', '-a', '--json').stdout) as Array<{ name: string; state: string }>;
    expect(ps2).toHaveLength(1);
    expect(ps2[0]!.name).not.toBe(ps1[0]!.name);
  });

  it('refuses compose features berth does not run, with the reason, and changes nothing', async () => {
    const r = await deploy(`services:\n  web:\n    image: ${img}\n    ports: ["80:80"]\n`);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/is invalid: services\.web\.ports: berth does not support this compose key/);
    const top = await deploy(`services: {}\ninclude: [other.yaml]\n`);
    expect(top.code).toBe(3);
    expect(top.stderr).toMatch(/include: berth does not support this top-level compose key/);
    expect(JSON.parse(berth('ps', '--json').stdout)).toHaveLength(1);
  });

  it('a service that dies in its health window rolls back to the last good revision', async () => {
    const r = await deploy(`services:\n  web:\n    image: ${img}\n    command: ["sh", "-c", "exit 3"]\nx-berth:\n  update:\n    health_window: 2s\n`);
    expect(r.stdout).toMatch(/^revision 3: rolled-back \(service web exited with 3 within the health window\)/);
    expect(r.code).toBe(9);
    const ps = JSON.parse(berth('ps', '--json').stdout) as Array<{ state: string }>;
    expect(ps.map((c) => c.state)).toEqual(['running']);
  });
});
