import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import type { FleetStore } from '../fleet/service/store.js';
import { openServiceClient, serverOptions, type ServerFlags } from './fleet-client.js';
import type { CliContext } from './context.js';
import { printJson, table } from './format.js';

/**
 * `berth fleet token create|ls|revoke`: the fleet service's API tokens. `create` works on the service's
 * database (--data, and --db for PostgreSQL): it is how the first admin token is made. `ls` and `revoke`
 * work either there or through a running service's API with an admin token (--server), so an operator
 * without shell access to the service's host can manage tokens too.
 */

interface StoreFlags {
  data?: string;
  db?: string;
}

type TokenJson = ReturnType<typeof import('../fleet/service/token-routes.js').tokenJson>;

/** Opens the service's store for `fn` and closes it after. */
async function withStore<T>(opts: StoreFlags, fn: (store: FleetStore) => Promise<T>): Promise<T> {
  const { openFleetStore } = await import('../fleet/service/open-store.js');
  const store = await openFleetStore(opts.data!, opts.db);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Exactly one of --data and --server: where the tokens are. */
function where(opts: StoreFlags & ServerFlags): 'data' | 'server' {
  if ((opts.data === undefined) === (opts.server === undefined)) throw new BerthError('usage', 'give either --data DIR (the service\'s database) or --server URL (a running service, with an admin token)');
  return opts.data !== undefined ? 'data' : 'server';
}

function storeOrServer(cmd: Command): Command {
  return serverOptions(cmd
    .option('--data <dir>', 'the service\'s data directory (works on its database directly)')
    .option('--db <url>', 'with --data: the service\'s PostgreSQL database, when it uses one')
    .option('--server <url>', 'a running fleet service instead of --data (needs an admin token)'), 'admin');
}

export function registerFleetToken(fleet: Command, context: () => CliContext): void {
  const token = fleet.command('token').description('API tokens of the fleet service');

  token.command('create')
    .description('make a new API token and print it (it is stored hashed: this is the only time it is shown)')
    .requiredOption('--data <dir>', 'the service\'s data directory')
    .option('--db <url>', 'the service\'s PostgreSQL database, when it uses one')
    .requiredOption('--scope <scope>', 'read (GET and the stream), deploy (+ rollouts and commands) or admin (everything)')
    .option('--name <name>', 'a name shown as the creator of rollouts (default SCOPE-ID)')
    .action(async (opts: StoreFlags & { scope: string; name?: string }) => {
      const ctx = context();
      const { createToken, parseScope } = await import('../fleet/service/auth.js');
      const { checkTokenName } = await import('../fleet/service/token-routes.js');
      const scope = parseScope(opts.scope);
      const name = opts.name === undefined ? undefined : checkTokenName(opts.name);
      const t = await withStore(opts, (store) => createToken(store, scope, name));
      ctx.out.write(`${t.token}\n`);
    });

  storeOrServer(token.command('ls'))
    .description('list the tokens: id, scope, name, created, last used (never the secret)')
    .option('--json', 'print the list as JSON (docs/fleet-api.yaml Token)')
    .action(async (opts: StoreFlags & ServerFlags & { json?: boolean }) => {
      const ctx = context();
      let tokens: TokenJson[];
      if (where(opts) === 'data') {
        const { tokenJson } = await import('../fleet/service/token-routes.js');
        tokens = await withStore(opts, async (store) => (await store.listTokens()).map(tokenJson));
      } else {
        const client = await openServiceClient(ctx, opts, 'admin');
        const answer = await client.request('GET', '/api/v1/tokens');
        if (answer.status !== 200) throw client.refused('the token list', answer);
        tokens = answer.body.tokens as TokenJson[];
      }
      if (opts.json) return printJson(ctx.out, tokens);
      ctx.out.write(table([['ID', 'SCOPE', 'NAME', 'CREATED', 'LAST USED'], ...tokens.map((t) => [t.id, t.scope, t.name, t.createdAt, t.lastUsedAt ?? 'never'])]));
    });

  storeOrServer(token.command('revoke'))
    .description('revoke tokens: they, and every dashboard session logged in with them, stop working at once')
    .argument('<id...>', 'token ids (berth fleet token ls)')
    .action(async (ids: string[], opts: StoreFlags & ServerFlags) => {
      const ctx = context();
      const revoke: (id: string) => Promise<void> = where(opts) === 'data'
        ? (id) => withStore(opts, async (store) => {
          if (!(await store.deleteToken(id))) throw new BerthError('notFound', `no token ${id}`);
        })
        : async (id) => {
          const client = await openServiceClient(ctx, opts, 'admin');
          const answer = await client.request('POST', `/api/v1/tokens/${encodeURIComponent(id)}/revoke`);
          if (answer.status !== 200) throw client.refused(`revoking token ${id}`, answer);
        };
      for (const id of ids) {
        await revoke(id);
        ctx.out.write(`${id}\n`);
      }
    });
}
