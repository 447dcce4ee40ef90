import { chownSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import pg from 'pg';
import { tcpAccepts } from './mosquitto.js';
import { findBinary, startDaemon, withPortRetry } from './process.js';

/**
 * A private PostgreSQL server for tests: a fresh cluster (initdb) in a temp dir owned by the
 * `postgres` user (the server refuses to run as root), listening on a free loopback port only, with
 * its socket in that dir and trust authentication for loopback connections: nothing else reaches it
 * and nothing is left behind. Debian's `postgresql` package (scripts/setup.sh).
 */
export interface PostgresInstance {
  readonly port: number;
  /** postgres://berth@127.0.0.1:PORT/postgres */
  readonly url: string;
  /** A new, empty database; returns its URL. */
  createDatabase(name?: string): Promise<string>;
  stop(): Promise<void>;
  logs(): string;
}

const HOST = '127.0.0.1';

function binDir(): string {
  const initdb = findBinary('initdb', ['/usr/lib/postgresql/15/bin/initdb', '/usr/lib/postgresql/16/bin/initdb', '/usr/lib/postgresql/17/bin/initdb']);
  return initdb.slice(0, -'/initdb'.length);
}

function uidOf(user: string): { uid: number; gid: number } {
  const [uid, gid] = ['-u', '-g'].map((f) => Number(execFileSync('id', [f, user], { encoding: 'utf8' }).trim()));
  return { uid: uid!, gid: gid! };
}

export async function startPostgres(): Promise<PostgresInstance> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'berth-postgres-'));
  const { uid, gid } = uidOf('postgres');
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const asPostgres = ['--reuid=postgres', '--regid=postgres', '--init-groups'];
  // fsync off: a test cluster thrown away afterwards needs no durability, and it is faster on a shared disk.
  execFileSync('setpriv', [...asPostgres, join(bin, 'initdb'), '-D', data, '-U', 'berth', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { cwd: dir, stdio: 'pipe' });
  try {
    return await withPortRetry(async (port) => {
      const daemon = await startDaemon({
        name: 'postgres',
        command: 'setpriv',
        args: [...asPostgres, join(bin, 'postgres'), '-D', data, '-h', HOST, '-p', String(port), '-k', dir, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=50', '-c', 'shared_buffers=16MB'],
        cwd: dir,
        tempDir: dir,
        ready: async (logs) => /ready to accept connections/.test(logs) && (await tcpAccepts(HOST, port)),
        readyTimeoutMs: 30_000,
      });
      const url = `postgres://berth@${HOST}:${port}/postgres`;
      return {
        port,
        url,
        logs: () => daemon.logs(),
        async createDatabase(name = `t_${crypto.randomBytes(4).toString('hex')}`) {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          try {
            await c.query(`CREATE DATABASE ${name}`);
          } finally {
            await c.end();
          }
          return `postgres://berth@${HOST}:${port}/${name}`;
        },
        async stop() {
          await daemon.stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
