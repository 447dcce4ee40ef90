import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, startDaemon, withPortRetry } from './process.js';

export interface MosquittoOptions {
  /** Default true. Set false together with `passwordFile` to test authentication. */
  allowAnonymous?: boolean;
  /** Absolute path to a file made with `mosquitto_passwd`. */
  passwordFile?: string;
  /** Absolute path to an ACL file. */
  aclFile?: string;
  /** Extra lines appended verbatim to the generated config. */
  extraConfig?: string[];
}

export interface MosquittoInstance {
  /** mqtt://127.0.0.1:PORT */
  url: string;
  host: string;
  port: number;
  /** Private temp dir holding the config; removed by stop(). */
  dir: string;
  stop(): Promise<void>;
  logs(): string;
}

const HOST = '127.0.0.1';

/** Resolves true once something accepts TCP connections on host:port. */
export function tcpAccepts(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Starts a private mosquitto on a free loopback port with a throwaway config. */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoInstance> {
  const bin = findBinary('mosquitto', ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto']);
  return withPortRetry(async (port) => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-mosquitto-'));
    try {
      const conf = join(dir, 'mosquitto.conf');
      const lines = [
        `listener ${port} ${HOST}`,
        `allow_anonymous ${opts.allowAnonymous ?? true}`,
        'persistence false',
        // stderr, not stdout: mosquitto's stdout is block-buffered on a pipe, so lines arrive late.
        'log_dest stderr',
        'log_type all',
        'connection_messages true',
        // As root, mosquitto 2 drops to the `mosquitto` user before reading password/ACL files,
        // which then could not read files in private (0700) temp dirs. Stay root for tests.
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        ...(opts.passwordFile ? [`password_file ${opts.passwordFile}`] : []),
        ...(opts.aclFile ? [`acl_file ${opts.aclFile}`] : []),
        ...(opts.extraConfig ?? []),
      ];
      await writeFile(conf, lines.join('\n') + '\n', { mode: 0o600 });
      const daemon = await startDaemon({
        name: 'mosquitto',
        command: bin,
        args: ['-c', conf],
        cwd: dir,
        tempDir: dir,
        // "running" is logged after all listeners are bound, so a connect that succeeds after it
        // reached this broker rather than whoever might have grabbed the port first.
        ready: async (logs) => /mosquitto version \S+ running/.test(logs) && (await tcpAccepts(HOST, port)),
      });
      return {
        url: `mqtt://${HOST}:${port}`,
        host: HOST,
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
