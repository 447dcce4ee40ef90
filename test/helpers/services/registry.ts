import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, startDaemon, withPortRetry } from './process.js';

export interface RegistryOptions {
  /** Allow DELETE of manifests and blobs (default true). */
  deleteEnabled?: boolean;
  /** Require HTTP Basic auth against these users (bcrypt htpasswd file, realm "berth-test"). */
  htpasswd?: { username: string; password: string }[];
  /** Require Bearer tokens from a Docker-token-spec issuer (see token-issuer.ts). */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

export interface RegistryInstance {
  /** http://127.0.0.1:PORT */
  url: string;
  /** "127.0.0.1:PORT", the form image references use. */
  host: string;
  port: number;
  /** Private temp dir holding config and storage; removed by stop(). */
  dir: string;
  stop(): Promise<void>;
  logs(): string;
}

const HOST = '127.0.0.1';

/**
 * Config for Debian's docker-registry 2.8. Deliberately not derived from the packaged
 * /etc/docker/registry/config.yml: that one listens on :5000 on all interfaces and enables htpasswd
 * auth pointing at a directory. Without a fixed http.secret the registry logs a warning each start;
 * the health storagedriver check and upload purging are background work a test does not need.
 */
function registryConfig(port: number, root: string, deleteEnabled: boolean, auth: string[]): string {
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  formatter: text',
    '  fields:',
    '    service: registry',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(root)}`,
    '  delete:',
    `    enabled: ${deleteEnabled}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${HOST}:${port}`,
    '  secret: berth-test-registry-secret',
    'health:',
    '  storagedriver:',
    '    enabled: false',
    ...auth,
    '',
  ].join('\n');
}

/** With auth configured an anonymous /v2/ is answered 401, which equally proves the registry is up. */
async function v2Ok(url: string, authEnabled: boolean): Promise<boolean> {
  const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1_000) });
  await res.arrayBuffer();
  return res.status === 200 || (authEnabled && res.status === 401);
}

/** One bcrypt line per user: registry 2.8 rejects every other htpasswd hash type. Password via stdin, not argv. */
function htpasswdLine(bin: string, username: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(bin, ['-Bin', username], (err, stdout, stderr) =>
      err ? reject(new Error(`htpasswd failed: ${stderr || err.message}`)) : resolve(stdout.trim()),
    );
    child.stdin?.end(`${password}\n`);
  });
}

async function authConfig(opts: RegistryOptions, dir: string): Promise<string[]> {
  if (opts.htpasswd && opts.token) throw new Error('startRegistry: choose htpasswd or token auth, not both');
  if (opts.htpasswd) {
    const bin = findBinary('htpasswd', ['/usr/bin/htpasswd', '/usr/local/bin/htpasswd']);
    const lines = await Promise.all(opts.htpasswd.map((u) => htpasswdLine(bin, u.username, u.password)));
    const path = join(dir, 'htpasswd');
    await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
    return ['auth:', '  htpasswd:', '    realm: berth-test', `    path: ${JSON.stringify(path)}`];
  }
  if (opts.token) {
    const t = opts.token;
    return [
      'auth:',
      '  token:',
      ...Object.entries({ realm: t.realm, service: t.service, issuer: t.issuer, rootcertbundle: t.rootCertBundle }).map(
        ([k, v]) => `    ${k}: ${JSON.stringify(v)}`,
      ),
    ];
  }
  return [];
}

/** Starts a private docker-registry (filesystem storage; no auth unless asked) on a free loopback port. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RegistryInstance> {
  const bin = findBinary('docker-registry', ['/usr/bin/docker-registry', '/usr/local/bin/registry', '/usr/bin/registry']);
  return withPortRetry(async (port) => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
    try {
      const root = join(dir, 'storage');
      await mkdir(root);
      const conf = join(dir, 'config.yml');
      const auth = await authConfig(opts, dir);
      await writeFile(conf, registryConfig(port, root, opts.deleteEnabled ?? true, auth), { mode: 0o600 });
      const url = `http://${HOST}:${port}`;
      const daemon = await startDaemon({
        name: 'docker-registry',
        command: bin,
        args: ['serve', conf],
        cwd: dir,
        tempDir: dir,
        // "listening on" is logged only after its own bind succeeded, so /v2/ answering afterwards
        // is this registry and not some other process that took the port.
        ready: async (logs) => logs.includes(`listening on ${HOST}:${port}`) && (await v2Ok(url, auth.length > 0)),
      });
      return {
        url,
        host: `${HOST}:${port}`,
        port,
        dir,
        logs: () => daemon.logs(),
        stop: async () => {
          await daemon.stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  });
}
