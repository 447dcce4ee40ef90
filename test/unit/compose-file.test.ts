import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { composeApp, readComposeFile } from '../../src/compose/file.js';
import { composeConfig, composeDocument } from '../../src/compose/render.js';
import { parseYaml } from '../../src/yaml.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-compose-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Writes `text` as a compose file in a project folder of its own; returns its path. */
function write(name: string, text: string, project = 'Weather-Station'): string {
  const d = path.join(dir, project);
  fs.mkdirSync(d, { recursive: true });
  const f = path.join(d, name);
  fs.writeFileSync(f, text);
  return f;
}

const STATION = `
services:
  logger:
    image: reg/logger:3
    entrypoint: ["/bin/logger"]
    command: --flush 5s
    environment:
      LEVEL: info
      RETRIES: 3
      EMPTY:
    mem_limit: 32m
    memswap_limit: -1
    cpus: "0.25"
    volumes: ["/var/lib/station//logs:/logs", "spool:/spool:rw"]
    devices: ["/dev/ttyUSB0:/dev/gps:wr"]
    stop_grace_period: 10s
    labels: {team: field}
    healthcheck:
      test: pgrep logger
      timeout: 5s
      retries: 2
  mqtt:
    image: reg/mqtt:2
    network_mode: host
    restart: unless-stopped
volumes:
  spool:
x-berth:
  update: {strategy: kill-then-download, on_failure: keep}
`;

describe('readComposeFile', () => {
  it('normalizes a file into the model the device runs, named after its folder', async () => {
    const app = await readComposeFile(write('compose.yaml', STATION));
    expect(app).toMatchObject({ name: 'weather-station', revision: 1, update: { strategy: 'kill-then-download', healthWindowMs: 30_000, onFailure: 'keep' } });
    expect(app.services.get('logger')!.run).toMatchObject({
      entrypoint: ['/bin/logger'], cmd: ['--flush', '5s'], env: ['LEVEL=info', 'RETRIES=3', 'EMPTY='], memory: 32 * 1024 * 1024, memorySwap: -1, cpus: 0.25, stopTimeout: 10,
    });
    expect(app.source.services.mqtt).toEqual({ image: 'reg/mqtt:2', network_mode: 'host', restart: 'unless-stopped' });
  });

  it('takes the project name from name: when there is one', async () => {
    expect((await readComposeFile(write('named.yaml', 'name: station-7\nservices:\n  a: {image: x}\n'))).name).toBe('station-7');
  });

  it.each([
    ['a service key berth does not run', 'services:\n  web:\n    image: x\n    volumes_from: [db]\n', /compose file \S+named-errors\/bad\.yaml is invalid: services\.web\.volumes_from: berth does not support this compose key/],
    ['a top-level key', 'services: {}\ninclude: [other.yaml]\n', /bad\.yaml: include: berth does not support this top-level compose key/],
    ['a top-level key compose does not have', 'services: {}\nservice: {}\n', /bad\.yaml: service: unknown top-level key/],
    ['a service that builds', 'services:\n  web:\n    build: .\n', /services\.web\.build: berth runs images and does not build them; give service web an image:/],
    ['a value berth run refuses', 'services:\n  web:\n    image: x\n    devices: ["dev/ttyUSB0"]\n', /bad\.yaml: services\.web\.devices: --device dev\/ttyUSB0: host path "dev\/ttyUSB0" must be absolute/],
    ['an update key', 'services: {}\nx-berth:\n  update: {strategy: yolo}\n', /update\.strategy: must be one of "download-then-kill", "kill-then-download"/],
    ['not a mapping', '- web\n', /expected a compose mapping with services:/],
    ['bad YAML', 'services: [\n', /bad\.yaml is not valid YAML \(line 2, column 1\)/],
  ])('refuses %s, naming it', async (_, text, message) => {
    const f = write('bad.yaml', text, 'named-errors');
    await expect(readComposeFile(f)).rejects.toThrow(expect.objectContaining({ category: 'invalid', message: expect.stringMatching(message) }));
  });

  it('a missing file is notFound', async () => {
    await expect(readComposeFile(path.join(dir, 'nope.yaml'))).rejects.toThrow(expect.objectContaining({ category: 'notFound' }));
  });
});

describe('composeConfig', () => {
  it('prints the normalized compose document: values resolved, defaults filled, berth labels left out', async () => {
    const doc = (await parseYaml(await composeConfig(write('compose.yaml', STATION)))) as Record<string, unknown>;
    expect(doc).toEqual({
      name: 'weather-station',
      services: {
        logger: {
          image: 'reg/logger:3', entrypoint: ['/bin/logger'], command: ['--flush', '5s'], environment: { LEVEL: 'info', RETRIES: '3', EMPTY: '' },
          mem_limit: 33554432, memswap_limit: -1, cpus: 0.25, restart: 'no', volumes: ['/var/lib/station/logs:/logs', 'spool:/spool'],
          devices: ['/dev/ttyUSB0:/dev/gps:rw'], read_only: false, stop_grace_period: '10s',
          healthcheck: { test: ['CMD', '/bin/sh', '-c', 'pgrep logger'], interval: '30s', timeout: '5s', retries: 2, start_period: '0s' },
          labels: { team: 'field' },
        },
        mqtt: { image: 'reg/mqtt:2', restart: 'unless-stopped', network_mode: 'host', read_only: false },
      },
      volumes: { spool: { name: 'weather-station_spool' } },
      networks: { default: { name: 'weather-station_default' } },
      'x-berth': { update: { strategy: 'kill-then-download', health_window: '30s', on_failure: 'keep' } },
    });
  });

  it('is a file berth reads back to the same document', async () => {
    const once = await composeConfig(write('compose.yaml', STATION));
    const again = composeDocument(composeApp(await parseYaml(once), write('again.yaml', once)));
    expect(again).toEqual(await parseYaml(once));
  });

  it('quotes "no" as docker compose does, and prints nothing with quiet', async () => {
    const f = write('plain.yaml', 'services:\n  a: {image: x}\n');
    expect(await composeConfig(f)).toContain('restart: "no"');
    expect(await composeConfig(f, {}, true)).toBe('');
  });
});
