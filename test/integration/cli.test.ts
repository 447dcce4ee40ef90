import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCgroupLayout } from '../../src/cgroup/layout.js';
import { hostPaths } from '../../src/host/paths.js';
import { BERTH_BIN, REPO, requireBuilt } from '../helpers/dist.js';
import { FIXTURE_HOSTS, variantHost } from '../helpers/host-tree.js';
import { berthSync } from '../helpers/berth-cli.js';

beforeAll(requireBuilt);

const berth = (args: string[], env: Record<string, string> = {}) => berthSync(args, { BERTH_HOST_ROOT: '', BERTH_ROOT: '', ...env });

describe('berth CLI', () => {
  it('--version prints the package version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(berth(['--version'])).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it('--help lists the commands and the global options', () => {
    const r = berth(['--help']);
    expect(r.code).toBe(0);
    for (const word of ['board', 'doctor', '--root <dir>', '--version']) expect(r.stdout).toContain(word);
  });

  it('works through a symlink, as after npm install -g', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bin-'));
    fs.symlinkSync(BERTH_BIN, path.join(dir, 'berth'));
    const r = spawnSync(path.join(dir, 'berth'), ['--version'], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true });
    expect(r.status).toBe(0);
  });

  it.each([[['--no-such-flag']], [['no-such-command']], [['board', '--bogus']]])('usage error %j exits 2', (args) => {
    const r = berth(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error|unknown/i);
  });

  it('board --json from a fixture host prints the documented fields', () => {
    const r = berth(['board', '--json'], { BERTH_HOST_ROOT: path.join(FIXTURE_HOSTS, 'rpi-zero-2-w') });
    expect(r.code).toBe(0);
    const b = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(b).toMatchObject({ profile: 'rpi-zero-2-w', model: 'Raspberry Pi Zero 2 W Rev 1.0', memoryBytes: 512 * 1024 * 1024, cpus: 4 });
    expect(b.platforms).toEqual(['linux/arm64', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
  });

  it('board in text form names the profile and platforms', () => {
    const r = berth(['board'], { BERTH_HOST_ROOT: path.join(FIXTURE_HOSTS, 'rpi-zero-w') });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^profile\s+rpi-zero-w /m);
    expect(r.stdout).toMatch(/^platforms\s+linux\/arm\/v6, linux\/arm\/v5$/m);
  });

  it('garbage cpuinfo: exit 6 with one clear line, no stack trace', () => {
    const v = variantHost('rpi-4b-4g', { 'proc/cpuinfo': Buffer.from([0, 1, 2, 0xff]) });
    const r = berth(['board'], { BERTH_HOST_ROOT: v.dir });
    v.cleanup();
    expect(r.code).toBe(6);
    expect(r.stderr).toBe('berth: /proc/cpuinfo is not text: control or invalid byte at offset 0\n');
  });

  it('board on this machine detects something real', () => {
    const r = berth(['board', '--json']);
    expect(r.code).toBe(0);
    const b = JSON.parse(r.stdout) as { cpus: number; memTotalBytes: number; platforms: string[] };
    expect(b.cpus).toBe(os.cpus().length);
    expect(b.memTotalBytes).toBeGreaterThan(0);
    expect(b.platforms.length).toBeGreaterThan(0);
  });

  it('doctor on this machine tells the truth about its cgroup layout', () => {
    const layout = readCgroupLayout(hostPaths('/'));
    const r = berth(['doctor']);
    if (layout.mode === 'unified') {
      expect(r.stdout).toMatch(/ok\s+cgroup v2 \(unified\)/);
    } else {
      // The CI machine is hybrid: doctor must say so, say what it means for limits, and fail.
      expect(r.code).toBe(6);
      expect(r.stdout).toMatch(new RegExp(`FAIL\\s+cgroup v2 \\(unified\\)\\s+${layout.mode === 'hybrid' ? 'hybrid cgroup layout' : ''}`));
      expect(r.stdout).toMatch(/cannot enforce memory, CPU or pids limits|cannot here|no cgroup filesystem/);
      expect(r.stdout).toMatch(/fix the FAIL lines/);
    }
  });

  it('doctor --json honours --root and BERTH_ROOT for the disk check', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-root-'));
    const viaFlag = JSON.parse(berth(['--root', root, 'doctor', '--json']).stdout) as { checks: Array<{ id: string; detail: string }> };
    const viaEnv = JSON.parse(berth(['doctor', '--json'], { BERTH_ROOT: root }).stdout) as typeof viaFlag;
    fs.rmSync(root, { recursive: true });
    for (const report of [viaFlag, viaEnv]) expect(report.checks.find((c) => c.id === 'disk')?.detail).toContain(`free at ${root},`);
  });

  it('doctor exits 0 on a fixture host that has everything', () => {
    const r = berth(['doctor'], { BERTH_HOST_ROOT: path.join(FIXTURE_HOSTS, 'rpi-zero-2-w') });
    expect(r.stdout).toMatch(/berth has what it needs/);
    expect(r.code).toBe(0);
  });
});
