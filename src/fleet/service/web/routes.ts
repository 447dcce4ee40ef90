// The dashboard's routes: pure (no DOM), so unit tests read them as the browser does.

/**
 * Client-side routes in the URL's hash (`#/devices/pi-1`): a link or reload works with any static file
 * server, and the service needs no knowledge of the pages. Query parameters after `?` carry filters.
 */
export type Route =
  | { readonly page: 'fleet'; readonly query: URLSearchParams }
  | { readonly page: 'device'; readonly id: string }
  | { readonly page: 'rollouts' }
  | { readonly page: 'rollout'; readonly id: string }
  | { readonly page: 'deploy'; readonly query: URLSearchParams }
  | { readonly page: 'tokens' }
  | { readonly page: 'not-found'; readonly path: string };

export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const [path = '/', qs = ''] = raw.split('?', 2);
  const query = new URLSearchParams(qs);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: 'fleet', query };
  if (parts[0] === 'devices' && parts.length === 2) return { page: 'device', id: parts[1]! };
  if (parts[0] === 'rollouts' && parts.length === 1) return { page: 'rollouts' };
  if (parts[0] === 'rollouts' && parts.length === 2) return { page: 'rollout', id: parts[1]! };
  if (parts[0] === 'deploy' && parts.length === 1) return { page: 'deploy', query };
  if (parts[0] === 'tokens' && parts.length === 1) return { page: 'tokens' };
  return { page: 'not-found', path };
}

/** Hash links for the pages, so no page spells another's URL by hand. */
export const href = {
  fleet: (query?: URLSearchParams): string => (query && query.size > 0 ? `#/?${query}` : '#/'),
  device: (id: string): string => `#/devices/${encodeURIComponent(id)}`,
  rollouts: (): string => '#/rollouts',
  rollout: (id: string): string => `#/rollouts/${encodeURIComponent(id)}`,
  deploy: (query?: URLSearchParams): string => (query && query.size > 0 ? `#/deploy?${query}` : '#/deploy'),
  tokens: (): string => '#/tokens',
};
