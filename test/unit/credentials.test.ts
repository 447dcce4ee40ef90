import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BerthError } from '../../src/errors.js';
import { AUTH_FILE, CredentialStore, normalizeRegistry } from '../../src/image/registry/credentials.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A state root (not yet created) and a home dir, both private to the test. */
function sandbox(): { root: string; home: string; dockerConfig: (json: unknown, dir?: string) => string } {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-creds-'));
  dirs.push(d);
  const home = path.join(d, 'home');
  fs.mkdirSync(home);
  return {
    root: path.join(d, 'root'),
    home,
    dockerConfig: (json, dir = path.join(home, '.docker')) => {
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, 'config.json');
      fs.writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
      return file;
    },
  };
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('normalizeRegistry', () => {
  it('folds the spellings found in config files', () => {
    expect(normalizeRegistry('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeRegistry('index.docker.io')).toBe('docker.io');
    expect(normalizeRegistry('registry-1.docker.io')).toBe('docker.io');
    expect(normalizeRegistry('docker.io')).toBe('docker.io');
    expect(normalizeRegistry('https://Reg.Example.com:5000')).toBe('reg.example.com:5000');
    expect(normalizeRegistry('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000');
    expect(normalizeRegistry('localhost:5000')).toBe('localhost:5000');
  });
});

describe('CredentialStore', () => {
  it('stores atomically: auth.json 0600 in a 0700 root, Docker-compatible content, no temp files left', () => {
    const { root, home } = sandbox();
    const store = new CredentialStore(root, {}, home);
    expect(store.get('127.0.0.1:5000')).toBeUndefined();
    store.set('127.0.0.1:5000', { username: 'alice', password: 'p:a ss' });
    const file = path.join(root, AUTH_FILE);
    expect(fs.statSync(root).mode & 0o777).toBe(0o700);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ auths: { '127.0.0.1:5000': { auth: b64('alice:p:a ss') } } });
    expect(fs.readdirSync(root)).toEqual([AUTH_FILE]);
    expect(new CredentialStore(root, {}, home).get('127.0.0.1:5000')).toEqual({ username: 'alice', password: 'p:a ss' });
  });

  it('replaces a login, keeps other registries, and removes', () => {
    const { root, home } = sandbox();
    const store = new CredentialStore(root, {}, home);
    store.set('https://index.docker.io/v1/', { username: 'a', password: '1' });
    store.set('reg:5000', { username: 'b', password: '2' });
    store.set('docker.io', { username: 'c', password: '3' });
    expect(Object.keys(JSON.parse(fs.readFileSync(store.path, 'utf8')).auths).sort()).toEqual(['docker.io', 'reg:5000']);
    expect(store.get('index.docker.io')).toEqual({ username: 'c', password: '3' });
    expect(store.remove('docker.io')).toBe(true);
    expect(store.remove('docker.io')).toBe(false);
    expect(store.get('docker.io')).toBeUndefined();
    expect(store.get('reg:5000')).toEqual({ username: 'b', password: '2' });
    expect(fs.statSync(store.path).mode & 0o777).toBe(0o600);
  });

  it("falls back to Docker's config under ~/.docker, matching any key spelling", () => {
    const { root, home, dockerConfig } = sandbox();
    dockerConfig({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
        'https://reg.example.com:5000': { auth: b64('r:p') },
        'plain:5000': { username: 'u', password: 'pw' },
        'helper.example.com': {},
      },
      credsStore: 'desktop',
    });
    const store = new CredentialStore(root, {}, home);
    expect(store.get('docker.io')).toEqual({ username: 'hubuser', password: 'hubpass' });
    expect(store.get('reg.example.com:5000')).toEqual({ username: 'r', password: 'p' });
    expect(store.get('plain:5000')).toEqual({ username: 'u', password: 'pw' });
    expect(store.get('helper.example.com')).toBeUndefined();
    expect(store.get('reg.example.com')).toBeUndefined(); // another port is another registry
  });

  it("prefers berth's own store, and honours $DOCKER_CONFIG", () => {
    const { root, home, dockerConfig } = sandbox();
    const custom = path.join(home, 'elsewhere');
    dockerConfig({ auths: { 'reg:1': { auth: b64('docker:home') } } });
    dockerConfig({ auths: { 'reg:1': { auth: b64('docker:env') }, 'reg:2': { auth: b64('only:docker') } } }, custom);
    const store = new CredentialStore(root, { DOCKER_CONFIG: custom }, home);
    expect(store.dockerPath).toBe(path.join(custom, 'config.json'));
    expect(store.get('reg:1')).toEqual({ username: 'docker', password: 'env' });
    store.set('reg:1', { username: 'berth', password: 'own' });
    expect(store.get('reg:1')).toEqual({ username: 'berth', password: 'own' });
    expect(store.get('reg:2')).toEqual({ username: 'only', password: 'docker' });
    // logout removes berth's login only; Docker's file is not ours to change.
    expect(store.remove('reg:2')).toBe(false);
    expect(store.get('reg:2')).toEqual({ username: 'only', password: 'docker' });
  });

  it('names the file when either one is malformed', () => {
    const { root, home, dockerConfig } = sandbox();
    const dockerFile = dockerConfig('{"auths": {');
    const store = new CredentialStore(root, {}, home);
    const err = (() => {
      try {
        store.get('reg:1');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(BerthError);
    expect(err).toMatchObject({ category: 'invalid' });
    expect((err as Error).message).toContain(dockerFile);

    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(store.path, 'not json');
    expect(() => store.get('reg:1')).toThrow(store.path);
    expect(() => store.set('reg:1', { username: 'a', password: 'b' })).toThrow(expect.objectContaining({ category: 'invalid' }));
    // A broken file is reported by position, never quoted: it holds passwords.
    const truncated = `{"auths": {"reg:1": {"auth": "${b64('u:s3cret')}"}}`;
    fs.writeFileSync(store.path, truncated);
    expect(() => store.get('reg:1')).toThrow(expect.objectContaining({ message: `${store.path} is not valid JSON (line 1, column ${truncated.length + 1}): unexpected end of input` }));

    fs.writeFileSync(store.path, JSON.stringify({ auths: { 'reg:1': { auth: b64('nocolon') } } }));
    expect(() => store.get('reg:1')).toThrow(expect.objectContaining({ category: 'invalid', message: expect.stringContaining(store.path) }));
    fs.writeFileSync(store.path, JSON.stringify({ auths: [] }));
    expect(() => store.get('reg:1')).toThrow(expect.objectContaining({ category: 'invalid' }));
  });

  it('refuses a user name with a colon (it could not be encoded)', () => {
    const { root, home } = sandbox();
    expect(() => new CredentialStore(root, {}, home).set('r', { username: 'a:b', password: 'c' })).toThrow(expect.objectContaining({ category: 'invalid' }));
  });
});
