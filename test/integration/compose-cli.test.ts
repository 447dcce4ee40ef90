import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseYaml } from '../../src/yaml.js';
import { runBerth } from '../helpers/berth-cli.js';
import { requireBuilt } from '../helpers/dist.js';

// `berth compose config` as users and CI run it: the built CLI on files in a temp dir, no broker,
// no registry, and a state root that must not even be created.
beforeAll(requireBuilt);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-compose-cli-'));
const root = path.join(dir, 'state-root-never-made');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const file = (name: string, text: string): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};
const config = (...args: string[]) => runBerth(['compose', 'config', ...args], { BERTH_ROOT: root });

const VALID = `services:
  probe:
    image: reg/probe:1
    command: ["probe", "--every", "5s"]
    mem_limit: 16m
    healthcheck: {test: ["CMD", "probe", "--check"], interval: 10s}
  relay:
    image: reg/relay:4
    environment: ["UPSTREAM=127.0.0.1:1883"]
    restart: on-failure
`;

describe('berth compose config', () => {
  it('prints a valid file normalized, as YAML, and exits 0', async () => {
    const r = await config(file('ok.yaml', VALID));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = (await parseYaml(r.stdout)) as { name: string; services: Record<string, Record<string, unknown>>; 'x-berth': unknown };
    expect(doc.name).toBe(path.basename(dir).toLowerCase().replace(/[^a-z0-9_-]/g, ''));
    expect(Object.keys(doc.services)).toEqual(['probe', 'relay']);
    expect(doc.services.probe).toMatchObject({ mem_limit: 16 * 1024 * 1024, healthcheck: { test: ['CMD', 'probe', '--check'], interval: '10s', timeout: '30s', retries: 3 } });
    expect(doc.services.relay).toMatchObject({ environment: { UPSTREAM: '127.0.0.1:1883' }, restart: 'on-failure', read_only: false });
    expect(doc['x-berth']).toEqual({ update: { strategy: 'download-then-kill', health_window: '30s', on_failure: 'rollback' } });
    expect(fs.existsSync(root)).toBe(false);
  });

  it('-q validates only: nothing printed, exit 0', async () => {
    expect(await config('-q', file('ok.yaml', VALID))).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it.each([
    ['an unsupported service key', 'services:\n  relay:\n    image: x\n    volumes_from: [db]\n', 3, /compose file \S+bad\.yaml is invalid: services\.relay\.volumes_from: berth does not support this compose key/],
    ['a missing image', 'services:\n  relay:\n    command: x\n', 3, /services\.relay: missing required key "image"/],
    ['a bad size', 'services:\n  relay:\n    image: x\n    mem_limit: 3 MB\n', 3, /services\.relay\.mem_limit: must match pattern/],
    ['an undeclared volume', 'services:\n  relay:\n    image: x\n    volumes: ["data:/b"]\n', 3, /services\.relay\.volumes\[0\]: volume "data" is not declared under top-level volumes:/],
  ])('refuses %s with its exit code and the key on stderr, with or without -q', async (_, text, code, message) => {
    const f = file('bad.yaml', text);
    for (const args of [[f], ['-q', f]]) {
      const r = await config(...args);
      expect(r.code).toBe(code);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^berth: /);
      expect(r.stderr).toMatch(message);
    }
  });

  it('a missing file is not found (4); no file at all is a usage error (2)', async () => {
    const missing = await config('-q', path.join(dir, 'absent.yaml'));
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/absent\.yaml/);
    expect((await config()).code).toBe(2);
  });
});
