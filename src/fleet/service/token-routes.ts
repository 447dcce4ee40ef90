import { BerthError } from '../../errors.js';
import { createToken, parseScope } from './auth.js';
import type { Route } from './http.js';
import type { FleetStore, TokenRecord } from './store.js';

/**
 * Token management under /api/v1/tokens (docs/fleet-api.yaml), admin scope only: list (never the
 * secret, nor its hash), create (the secret is in that one answer only, as with `berth fleet token
 * create`), revoke (the token and every dashboard session logged in with it stop working at once).
 */

/** The API's Token shape: what an admin may see of a token. The one place it is built (the CLI's --data path uses it too). */
export function tokenJson(t: TokenRecord): { id: string; name: string; scope: string; createdAt: string; lastUsedAt: string | null } {
  return { id: t.id, name: t.name, scope: t.scope, createdAt: new Date(t.createdAt).toISOString(), lastUsedAt: t.lastUsedAt === undefined ? null : new Date(t.lastUsedAt).toISOString() };
}

/** Token names are shown in lists and recorded as rollout creators: one line of printable text. */
export function checkTokenName(name: unknown): string | undefined {
  if (name === undefined || name === null || name === '') return undefined;
  if (typeof name !== 'string' || name.length > 64 || !/^[\p{L}\p{N} ._@:+-]+$/u.test(name)) {
    throw new BerthError('invalid', 'token "name" must be 1–64 letters, digits, spaces or ._@:+-');
  }
  return name;
}

export function tokenRoutes(store: FleetStore): Route[] {
  return [
    { method: 'GET', path: '/api/v1/tokens', scope: 'admin', handler: async () => ({ json: { tokens: (await store.listTokens()).map(tokenJson) } }) },
    {
      method: 'POST', path: '/api/v1/tokens', scope: 'admin',
      handler: async ({ body }) => {
        const b = (await body()) as { scope?: unknown; name?: unknown } | undefined;
        if (typeof b !== 'object' || b === null || typeof b.scope !== 'string') throw new BerthError('invalid', 'token request: "scope" is required (read, deploy or admin)');
        const scope = parseScope(b.scope, '"scope"');
        const now = Date.now();
        const made = await createToken(store, scope, checkTokenName(b.name), now);
        return { status: 201, json: { ...tokenJson({ ...made, scope, hash: '', createdAt: now }), token: made.token } };
      },
    },
    {
      method: 'POST', path: '/api/v1/tokens/:id/revoke', scope: 'admin',
      handler: async ({ params }) => {
        const t = (await store.listTokens()).find((x) => x.id === params.id);
        if (!t || !(await store.deleteToken(t.id))) throw new BerthError('notFound', `no token ${params.id}`);
        return { json: { ...tokenJson(t), revoked: true } };
      },
    },
  ];
}
