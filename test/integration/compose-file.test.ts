import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { berthSync, runBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';
import { pushBusyboxImage } from '../helpers/images/build.js';
import { startRegistry, type RegistryInstance } from '../helpers/services/registry.js';

// The compose file as people write it, deployed for real by `berth deploy`: what the reader settles
// (interpolation from .env, a relative bind source, a config file) reaches the running container. The
// shell scripts write `$$VAR`: compose interpolates a command too, and `$$` is how a file keeps a `$`.
let registry: RegistryInstance;
let root: string;
let work: string;
let img: string;

beforeAll(async () => {
  requireBuilt();
  registry = await startRegistry();
  await pushBusyboxImage(registry, 'compose/file', 'v1', { arches: ['amd64'] });
  img = `${registry.host}/compose/file:v1`;
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-compose-file-'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-compose-work-'));
}, 60_000);
afterAll(async () => {
  const left = JSON.parse(berth('ps', '-a', '--json').stdout || '[]') as Array<{ name: string }>;
  if (left.length > 0) berth('rm', '-f', ...left.map((c) => c.name));
  await registry?.stop();
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

const berth = (...args: string[]) => berthSync(['--root', root, ...args]);

/** Writes a project folder (compose.yaml and its neighbours) and deploys it; BERTH env only, so the test's own environment does not leak in. */
async function deployProject(name: string, files: Record<string, string>, env: Record<string, string> = {}) {
  const dir = path.join(work, name);
  for (const [f, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), text);
  }
  const r = await runBerth(['--root', root, 'deploy', path.join(dir, 'compose.yaml')], env);
  return { ...r, dir };
}

/**
 * A service that records what it sees into /out (a bind of `out`) and stays up through the health
 * window; on no network, so the test does not depend on the app's bridge network (issue 16's part).
 */
const recorder = (script: string, out: string, extra = '') =>
  `    image: ${img}\n    command: ["sh", "-c", ${JSON.stringify(`${script}; sleep 3600`)}]\n    network_mode: none\n    stop_grace_period: 1s\n    volumes: ["${out}:/out"${extra}]\n`;

describe('berth deploy of a compose file', () => {
  it('interpolates from the .env beside the file, the environment winning, into the container', async () => {
    const out = fs.mkdtempSync(path.join(work, 'out-'));
    const r = await deployProject('env', {
      '.env': 'GREETING=hello from dotenv\nSITE=dotenv-site\n',
      'compose.yaml': `services:\n  app:\n${recorder('echo "$$MSG|$$SITE|$$PRICE" > /out/env', out)}    environment:\n      MSG: \${GREETING}\n      SITE: \${SITE:-none}\n      PRICE: "$$5"\nx-berth:\n  update: {health_window: 1s}\n`,
    }, { SITE: 'env-site' });
    expect(r.stderr).not.toMatch(/warning/);
    expect(r.stdout).toMatch(/^revision \d+: applied\n$/);
    expect(fs.readFileSync(path.join(out, 'env'), 'utf8')).toBe('hello from dotenv|env-site|$5\n');
  });

  it('creates a relative bind source beside the file on the first deploy', async () => {
    const out = fs.mkdtempSync(path.join(work, 'out-'));
    const r = await deployProject('bind', {
      'compose.yaml': `services:\n  app:\n${recorder('echo kept > /data/note', out, ', "./data/sensor:/data"')}x-berth:\n  update: {health_window: 1s}\n`,
    });
    expect(r.stdout).toMatch(/^revision \d+: applied\n$/);
    expect(fs.readFileSync(path.join(r.dir, 'data', 'sensor', 'note'), 'utf8')).toBe('kept\n');
  });

  it('mounts a config file read-only', async () => {
    const out = fs.mkdtempSync(path.join(work, 'out-'));
    const r = await deployProject('config', {
      'mosquitto.conf': 'listener 1883\nallow_anonymous true\n',
      'compose.yaml': [
        'services:',
        '  app:',
        recorder('cp /mosquitto.conf /out/seen; if echo x >> /mosquitto.conf; then echo writable; else echo read-only; fi > /out/mode', out).trimEnd(),
        '    configs:',
        '      - source: broker',
        '        target: /mosquitto.conf',
        'configs:',
        '  broker:',
        '    file: ./mosquitto.conf',
        'x-berth:',
        '  update: {health_window: 1s}',
      ].join('\n'),
    });
    expect(r.stdout).toMatch(/^revision \d+: applied\n$/);
    expect(fs.readFileSync(path.join(out, 'seen'), 'utf8')).toBe('listener 1883\nallow_anonymous true\n');
    expect(fs.readFileSync(path.join(out, 'mode'), 'utf8')).toBe('read-only\n');
  });

  it('recreates the service on redeploy when only the config file changed, and the container sees the new content', async () => {
    const out = fs.mkdtempSync(path.join(work, 'out-'));
    const compose = [
      'services:',
      '  app:',
      recorder('cat /etc/app.conf > /out/seen', out).trimEnd(),
      '    configs: [{source: conf, target: /etc/app.conf}]',
      'configs:',
      '  conf: {file: ./app.conf}',
      'x-berth:',
      '  update: {health_window: 1s}',
    ].join('\n');
    const first = await deployProject('config-edit', { 'app.conf': 'level=1\n', 'compose.yaml': compose });
    expect(first.stdout).toMatch(/^revision \d+: applied\n$/);
    expect(fs.readFileSync(path.join(out, 'seen'), 'utf8')).toBe('level=1\n');
    const before = (JSON.parse(berth('ps', '--json').stdout) as Array<{ name: string }>).map((c) => c.name);
    const second = await deployProject('config-edit', { 'app.conf': 'level=2\n' });
    expect(second.stdout).toMatch(/^revision \d+: applied\n$/);
    expect(fs.readFileSync(path.join(out, 'seen'), 'utf8')).toBe('level=2\n');
    const after = (JSON.parse(berth('ps', '--json').stdout) as Array<{ name: string }>).map((c) => c.name);
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
  });
});
