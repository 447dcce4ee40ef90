import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readComposeFile, type ComposeReadOptions } from '../../src/compose/file.js';
import { resolveHostPath } from '../../src/compose/file-services.js';

/** The compose reader's file-level semantics: interpolation, .env, extensions, profiles, env_file, relative paths, build. */

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-file-level-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let projects = 0;
/** A project folder of its own with `files` in it (compose.yaml among them); returns the compose file's path. */
function project(files: Record<string, string>): string {
  const dir = path.join(root, `p${++projects}`);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return path.join(dir, 'compose.yaml');
}

const read = (file: string, opts: ComposeReadOptions = {}) => readComposeFile(file, { env: {}, ...opts });
const refused = (file: string, message: RegExp, opts: ComposeReadOptions = {}) =>
  expect(read(file, opts)).rejects.toThrow(expect.objectContaining({ message: expect.stringMatching(message) }));

describe('interpolation', () => {
  it('takes variables from the environment before the .env beside the file, with compose defaults and $$', async () => {
    const file = project({
      '.env': 'TZ=Europe/Oslo\nTAG=2\nBROKER=mqtt://from-dotenv\n',
      'compose.yaml': [
        'services:',
        '  sensor:',
        '    image: "reg/sensor:${TAG}"',
        '    environment:',
        '      TZ: ${TZ:-Etc/UTC}',
        '      BROKER: $BROKER',
        '      LEVEL: ${LEVEL-info}',
        '      PRICE: "$$5"',
        '      EMPTY: ${NOPE:-}',
      ].join('\n'),
    });
    const warnings: string[] = [];
    const app = await read(file, { env: { BROKER: 'mqtt://from-env' }, onWarning: (m) => warnings.push(m) });
    expect(app.source.services.sensor!.image).toBe('reg/sensor:2');
    expect(app.services.get('sensor')!.run.env).toEqual(['TZ=Europe/Oslo', 'BROKER=mqtt://from-env', 'LEVEL=info', 'PRICE=$5', 'EMPTY=']);
    expect(warnings).toEqual([]);
  });

  it('warns of an unset variable and refuses a required one, naming where it is', async () => {
    const warnings: string[] = [];
    await read(project({ 'compose.yaml': 'services:\n  a:\n    image: x\n    environment: [TOKEN=$TOKEN]\n' }), { onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual(['variable TOKEN is not set; using an empty string (services.a.environment[0])']);
    await refused(project({ 'compose.yaml': 'services:\n  a:\n    image: ${IMAGE:?set IMAGE to the sensor image}\n' }), /compose\.yaml: services\.a\.image: required variable IMAGE is missing a value: set IMAGE to the sensor image/);
  });
});

describe('the document', () => {
  it('drops x-* extensions at the top level and in services, after their anchors were merged', async () => {
    const app = await read(project({
      'compose.yaml': [
        'x-common: &common',
        '  restart: always',
        '  x-note: kept out',
        'services:',
        '  a:',
        '    <<: *common',
        '    image: x',
        '    x-owner: field team',
        'volumes:',
        '  data:',
        '    x-backup: nightly',
      ].join('\n'),
    }));
    expect(app.source.services.a).toEqual({ image: 'x', restart: 'always' });
    expect(app.source.volumes).toEqual({ data: {} });
  });

  it('takes the name from COMPOSE_PROJECT_NAME, then name:, then the folder', async () => {
    const file = project({ 'compose.yaml': 'name: station\nservices: {}\n' });
    expect((await read(file)).name).toBe('station');
    expect((await read(file, { env: { COMPOSE_PROJECT_NAME: 'override' } })).name).toBe('override');
    expect((await read(project({ 'compose.yaml': 'services: {}\n' }))).name).toMatch(/^p\d+$/);
    await refused(project({ 'compose.yaml': 'name: Bad Name\nservices: {}\n' }), /is invalid: name: must match pattern/);
  });
});

describe('profiles', () => {
  const text = 'services:\n  app: {image: a}\n  debug: {image: d, profiles: [debug]}\n  tools: {image: t, profiles: [tools, debug]}\n';
  it('drops the services of profiles not enabled', async () => {
    expect([...(await read(project({ 'compose.yaml': text }))).services.keys()]).toEqual(['app']);
  });
  it('enables them by option, by COMPOSE_PROFILES (also from .env), or all with *', async () => {
    expect([...(await read(project({ 'compose.yaml': text }), { profiles: ['tools'] })).services.keys()]).toEqual(['app', 'tools']);
    expect([...(await read(project({ 'compose.yaml': text }), { env: { COMPOSE_PROFILES: 'debug' } })).services.keys()]).toEqual(['app', 'debug', 'tools']);
    expect([...(await read(project({ 'compose.yaml': text, '.env': 'COMPOSE_PROFILES=tools\n' }))).services.keys()]).toEqual(['app', 'tools']);
    expect((await read(project({ 'compose.yaml': text }), { profiles: ['*'] })).services.size).toBe(3);
  });
  it('refuses profiles that are not a list of names', async () => {
    await refused(project({ 'compose.yaml': 'services:\n  a: {image: a, profiles: debug}\n' }), /services\.a\.profiles: must be a list of profile names/);
  });
});

describe('env_file', () => {
  it('merges env files in order under environment, which wins, read relative to the compose file', async () => {
    const file = project({
      'conf/base.env': 'LEVEL=debug\nREGION=eu\n# a comment\nURL=http://${HOST:-localhost}:1880\n',
      'conf/site.env': 'REGION=north\n',
      'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: [conf/base.env, {path: ./conf/site.env}, {path: missing.env, required: false}]\n    environment: [LEVEL=warn]\n',
    });
    const app = await read(file);
    expect(app.source.services.a!.environment).toEqual({ LEVEL: 'warn', REGION: 'north', URL: 'http://localhost:1880' });
    expect(app.services.get('a')!.run.env).toEqual(['LEVEL=warn', 'REGION=north', 'URL=http://localhost:1880']);
  });
  it('refuses a missing required file, naming the key', async () => {
    await refused(project({ 'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: gone.env\n' }), /services\.a\.env_file: cannot read env file \S+gone\.env: ENOENT/);
  });
});

describe('relative bind sources', () => {
  const text = 'services:\n  a:\n    image: x\n    volumes: ["./data:/data", "../shared:/shared:ro", "~/cfg:/cfg", "cache:/cache", "/abs:/abs"]\nvolumes:\n  cache:\n';
  it('are made absolute against the file (and the home directory) for berth deploy', async () => {
    const file = project({ 'compose.yaml': text });
    const dir = path.dirname(file);
    const app = await read(file, { env: { HOME: '/home/pi' } });
    expect(app.source.services.a!.volumes).toEqual([`${dir}/data:/data`, `${path.dirname(dir)}/shared:/shared:ro`, '/home/pi/cfg:/cfg', 'cache:/cache', '/abs:/abs']);
  });
  it('stay relative for a fleet deploy, cleaned, and may not leave the app directory or name a home', async () => {
    const fleet = { mode: 'fleet' as const };
    const ctx = { dir: '/work/app', mode: 'fleet' as const, home: '/home/pi', lookup: () => undefined };
    expect(resolveHostPath('v', './a/../data', ctx)).toBe('./data');
    expect(resolveHostPath('v', '.', ctx)).toBe('.');
    expect(() => resolveHostPath('v', './cfg/../../etc', ctx)).toThrow(/v: "\.\/cfg\/\.\.\/\.\.\/etc" leaves the app's data directory/);
    expect(resolveHostPath('v', './cfg', { ...ctx, mode: 'local' })).toBe('/work/app/cfg');
    await refused(project({ 'compose.yaml': text }), /services\.a\.volumes\[1\]: "\.\.\/shared" leaves the app's data directory/, fleet);
    await refused(project({ 'compose.yaml': 'services:\n  a:\n    image: x\n    volumes: ["~/cfg:/cfg"]\n' }), /services\.a\.volumes\[0\]: "~\/cfg" names a home directory/, fleet);
  });
});

describe('build', () => {
  it('runs the image of a service that has both', async () => {
    expect((await read(project({ 'compose.yaml': 'services:\n  a:\n    build: ./a\n    image: reg/a:1\n' }))).source.services.a).toEqual({ image: 'reg/a:1' });
  });
  it('refuses a build-only service, naming it and saying what to do', async () => {
    const file = project({ 'compose.yaml': 'services:\n  cam:\n    build: {context: .}\n' });
    await expect(read(file)).rejects.toMatchObject({
      category: 'invalid',
      message: expect.stringMatching(/services\.cam\.build: berth runs images and does not build them; give service cam an image:/),
      hint: expect.stringMatching(/build it for your boards' platforms in CI .*push.*set services\.cam\.image/),
    });
  });
});

describe('errors name the key', () => {
  it.each([
    ['a compose service key berth does not run', 'services:\n  frigate:\n    image: x\n    volumes_from: [db]\n', /services\.frigate\.volumes_from: berth does not support this compose key/],
    ['a key compose does not have', 'services:\n  frigate:\n    image: x\n    shm_sise: 64m\n', /services\.frigate\.shm_sise: unknown key/],
    ['a network driver', 'services: {}\nnetworks:\n  lan: {driver: macvlan}\n', /networks\.lan\.driver: must be one of "bridge"/],
    ['a volume key', 'services: {}\nvolumes:\n  d: {driver: local, size: 1g}\n', /volumes\.d\.size: unknown key/],
  ])('%s', async (_, text, message) => {
    await refused(project({ 'compose.yaml': text }), message);
  });
});
