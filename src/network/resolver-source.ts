import fs from 'node:fs';
import type { HostPaths } from '../host/paths.js';
import { readHostText } from '../host/read.js';

/**
 * Where "the host's resolvers" come from, for the two things that forward names berth does not serve:
 * the resolv.conf of containers on networks without DNS (the default bridge, as docker copies the
 * host's), and aardvark-dns, which forwards names it does not know to the servers of the
 * /etc/resolv.conf it reads at start. By default both read the host's /etc/resolv.conf. An operator may
 * name another file (BERTH_RESOLV_CONF), as docker reads /run/systemd/resolve/resolv.conf on hosts
 * whose /etc/resolv.conf names only a loopback stub; the integration tests name one that lists only a
 * loopback server, so no lookup of theirs can leave the host.
 */
export interface ResolverSource {
  /** The file to use instead of the host's /etc/resolv.conf; absent: the host's own. */
  readonly file?: string;
}

/** The resolver source of a berth process's environment. */
export function resolverSource(env: NodeJS.ProcessEnv): ResolverSource {
  return env.BERTH_RESOLV_CONF ? { file: env.BERTH_RESOLV_CONF } : {};
}

/** The resolver text containers without network DNS are given servers from; undefined when absent. */
export function readResolverText(source: ResolverSource, host: HostPaths): string | undefined {
  if (source.file === undefined) return readHostText(host, '/etc/resolv.conf');
  try {
    return fs.readFileSync(source.file, 'utf8');
  } catch {
    // An operator's file that vanished: no servers, rather than the host's ones the operator replaced.
    return '';
  }
}

/**
 * `command args` run so that it, and every process it leaves behind (netavark's aardvark-dns daemon,
 * which keeps the mount namespace it started in), reads `source.file` as /etc/resolv.conf: a private
 * mount namespace with the file bind-mounted over it. aardvark-dns 1.4 has no other way to be told its
 * upstream servers. No file: the command unchanged. `unshare`: util-linux's unshare(1).
 */
export function withResolver(source: ResolverSource, unshare: string | undefined, cmd: { command: string; args: string[] }): { command: string; args: string[] } {
  if (source.file === undefined || unshare === undefined) return cmd;
  return {
    command: unshare,
    args: ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', source.file, cmd.command, ...cmd.args],
  };
}
