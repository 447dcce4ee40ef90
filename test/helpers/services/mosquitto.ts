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
  /** A TLS listener instead of plain MQTT: `url` becomes mqtts://127.0.0.1:PORT. */
  tls?: MosquittoTlsOptions;
  /**
   * Turns persistence on, with the database in this (existing, writable) dir. Not removed by
   * stop(), so a broker started later on the same dir sees the retained messages and sessions.
   */
  persistenceDir?: string;
  /** Extra lines appended verbatim to the generated config (after the listener: per-listener options apply to it). */
  extraConfig?: string[];
}

/** mosquitto's listener TLS options; paths absolute. */
export interface MosquittoTlsOptions {
  /** CA that client certificates must chain to (with requireCertificate). */
  cafile: string;
  /** The server certificate (its SANs must cover 127.0.0.1 for clients that verify it) and key. */
  certfile: string;
  keyfile: string;
  /** Clients must present a certificate signed by cafile (mTLS). Default false. */
  requireCertificate?: boolean;
  /** The client certificate's CN becomes the user name (ACL %u); passwords are not used. Default false. */
  useIdentityAsUsername?: boolean;
}

export interface MosquittoInstance {
  /** mqtt://127.0.0.1:PORT, or mqtts://127.0.0.1:PORT with `tls`. */
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
      const tls = opts.tls;
      const lines = [
        `listener ${port} ${HOST}`,
        ...(tls
          ? [
              `cafile ${tls.cafile}`,
              `certfile ${tls.certfile}`,
              `keyfile ${tls.keyfile}`,
              `require_certificate ${tls.requireCertificate ?? false}`,
              `use_identity_as_username ${tls.useIdentityAsUsername ?? false}`,
            ]
          : []),
        `allow_anonymous ${opts.allowAnonymous ?? true}`,
        ...(opts.persistenceDir
          ? ['persistence true', `persistence_location ${opts.persistenceDir.replace(/\/?$/, '/')}`]
          : ['persistence false']),
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
        url: `${tls ? 'mqtts' : 'mqtt'}://${HOST}:${port}`,
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
