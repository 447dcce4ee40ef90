import { BerthError } from '../../errors.js';

/**
 * `berth fleet deploy --server URL`: the CLI as a client of the fleet service. The rollout is created
 * by the service and outlives this command; what comes back is its record (docs/fleet-api.yaml Rollout).
 */
export async function submitRollout(server: string, token: string, request: Record<string, unknown>): Promise<Record<string, any>> {
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new BerthError('usage', `--server takes the service's URL, such as https://fleet.example:8443, not "${server}"`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new BerthError('usage', `--server must be http:// or https://, not ${server}`);
  let res: Response;
  try {
    res = await fetch(new URL('/api/v1/rollouts', base), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    throw new BerthError('network', `cannot reach the fleet service ${server}: ${cause?.message ?? (err as Error).message}`, { cause: err });
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, any>;
  if (res.status === 201) return body;
  const e = body.error as { code?: string; message?: string; hint?: string } | undefined;
  const category = res.status === 401 ? 'auth' : res.status === 403 ? 'auth' : res.status === 404 ? 'notFound' : res.status === 409 ? 'conflict' : res.status === 400 ? 'invalid' : 'network';
  throw new BerthError(category, `the fleet service refused the rollout (${res.status}): ${e?.message ?? res.statusText}`, { ...(e?.hint !== undefined && { hint: e.hint }) });
}
