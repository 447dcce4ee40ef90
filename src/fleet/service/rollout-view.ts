import { BerthError } from '../../errors.js';
import { intParam } from './http.js';
import { rolloutDevice, rolloutSummary } from './present.js';
import { DEVICE_OUTCOMES, type DeviceOutcome, type FleetStore } from './store.js';

/**
 * GET /api/v1/rollouts/{id} (and the answers of create, pause, resume and cancel): the rollout's
 * summary with its devices in sending order. Without `limit`, every device (as before paging, for
 * scripts); with `limit`, one page of those whose `seq` is above `after` (and of `outcome`, when given),
 * plus `next`, the `after` of the next page or null on the last: a rollout of 10,000 devices answered
 * whole was 10,000 rows read, serialized and parsed by the dashboard at each visit.
 */

const MAX_PAGE = 1000;

export async function rolloutView(store: FleetStore, id: string, url?: URL): Promise<Record<string, unknown>> {
  const r = await store.getRollout(id);
  if (!r) throw new BerthError('notFound', `no rollout ${id}`);
  const outcome = url?.searchParams.get('outcome') ?? undefined;
  if (outcome !== undefined && outcome !== '' && !DEVICE_OUTCOMES.includes(outcome as DeviceOutcome)) {
    throw new BerthError('invalid', `query parameter "outcome" must be one of ${DEVICE_OUTCOMES.join(', ')}, not "${outcome}"`);
  }
  const only = outcome === undefined || outcome === '' ? undefined : (outcome as DeviceOutcome);
  if (url === undefined || !url.searchParams.has('limit')) return { ...rolloutSummary(r), devices: (await store.rolloutDevices(id, only)).map(rolloutDevice) };
  const limit = intParam(url, 'limit', 100, 1, MAX_PAGE);
  const after = intParam(url, 'after', -1, -1, Number.MAX_SAFE_INTEGER);
  // One row more than the page tells whether another page follows.
  const rows = await store.rolloutDevices(id, only, { after, limit: limit + 1 });
  const page = rows.slice(0, limit);
  return { ...rolloutSummary(r), devices: page.map(rolloutDevice), next: rows.length > limit ? page[page.length - 1]!.seq : null };
}
