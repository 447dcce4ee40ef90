import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import { readNamedFile } from '../host/read.js';
import type { ServiceClient } from '../fleet/service/client.js';
import type { CliContext } from './context.js';

/**
 * The flags of every verb that talks to a fleet service (`berth fleet serve`) over its API: the URL,
 * the private CA to trust for its TLS (as curl --cacert), and the token. Read in one place so each verb
 * spells and checks them alike.
 */
export interface ServerFlags {
  server?: string;
  serverCa?: string;
  tokenFile?: string;
}

/** Adds --server-ca and --token-file (each verb words its own --server: it may be optional or required). */
export function serverOptions(cmd: Command, scope: 'deploy' | 'admin'): Command {
  return cmd
    .option('--server-ca <file>', 'with --server: trust the service\'s TLS certificate through this CA (PEM) instead of the system\'s roots, as curl --cacert')
    .option('--token-file <file>', `with --server: a file holding an API token of scope ${scope} (or env BERTH_FLEET_TOKEN)`);
}

/** The client for `opts.server` with the token (from --token-file or BERTH_FLEET_TOKEN) and the CA; usage errors naming the flag. */
export async function openServiceClient(ctx: CliContext, opts: ServerFlags, scope: 'deploy' | 'admin'): Promise<ServiceClient> {
  if (opts.server === undefined) throw new BerthError('usage', 'this needs --server URL (the fleet service)');
  const token = opts.tokenFile !== undefined ? readNamedFile(opts.tokenFile, '--token-file').toString('utf8').trim() : ctx.env.BERTH_FLEET_TOKEN;
  if (token === undefined || token === '') {
    throw new BerthError('usage', '--server needs an API token: --token-file FILE or env BERTH_FLEET_TOKEN', { hint: `make one with berth fleet token create --scope ${scope} on the service's host` });
  }
  const { ServiceClient } = await import('../fleet/service/client.js');
  return new ServiceClient({
    server: opts.server, token,
    ...(opts.serverCa !== undefined && { ca: readNamedFile(opts.serverCa, '--server-ca'), caFile: opts.serverCa }),
  });
}
