import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, startDaemon, withPortRetry } from './process.js';

export interface RegistryOptions {
  /** Allow DELETE of manifests and blobs (default true). */
  deleteEnabled?: boolean;
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
function registryConfig(port: number, root: string, deleteEnabled: boolean): string {
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
    '',
  ].join('\n');
}

async function v2Ok(url: string): Promise<boolean> {
  const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1_000) });
  await res.arrayBuffer();
  return res.status === 200;
}

/** Starts a private docker-registry (no auth, filesystem storage) on a free loopback port. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RegistryInstance> {
  const bin = findBinary('docker-registry', ['/usr/bin/docker-registry', '/usr/local/bin/registry', '/usr/bin/registry']);
  return withPortRetry(async (port) => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
    try {
      const root = join(dir, 'storage');
      await mkdir(root);
      const conf = join(dir, 'config.yml');
      await writeFile(conf, registryConfig(port, root, opts.deleteEnabled ?? true), { mode: 0o600 });
      const url = `http://${HOST}:${port}`;
      const daemon = await startDaemon({
        name: 'docker-registry',
        command: bin,
        args: ['serve', conf],
        cwd: dir,
        tempDir: dir,
        // "listening on" is logged only after its own bind succeeded, so /v2/ answering afterwards
        // is this registry and not some other process that took the port.
        ready: async (logs) => logs.includes(`listening on ${HOST}:${port}`) && (await v2Ok(url)),
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
