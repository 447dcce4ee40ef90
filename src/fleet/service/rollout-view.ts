import { BerthError } from '../../errors.js';
import { intParam } from './http.js';
import { rolloutDevice, rolloutSummary } from './present.js';
import { DEVICE_OUTCOMES, type DeviceOutcome, type FleetStore } from './store.js';

/**
 * GET /api/v1/rollouts/{id} (and the answers of create, pause, resume and cancel): the rollout's
 * summary with its devices in sending order. With `limit`, one page of those whose `seq` is above
 * `after` (and of `outcome`, when given), plus `next`, the `after` of the next page or null on the last:
 * a rollout of 10,000 devices answered whole was 10,000 rows read, serialized and parsed by the
 * dashboard at each visit. Without `limit`: every device for GET (as before paging, for scripts), and
 * the first `defaultLimit` (ANSWER_PAGE) for the answers of create and the moves, which a caller reads
 * for the summary: their devices are a page, as GET's, with the same `next`.
 */

const MAX_PAGE = 1000;
/** The page the answers of POST /api/v1/rollouts, pause, resume and cancel carry when no `limit` is asked. */
export const ANSWER_PAGE = 100;

export async function rolloutView(store: FleetStore, id: string, url?: URL, defaultLimit?: number): Promise<Record<string, unknown>> {
  const r = await store.getRollout(id);
  if (!r) throw new BerthError('notFound', `no rollout ${id}`);
  const outcome = url?.searchParams.get('outcome') ?? undefined;
  if (outcome !== undefined && outcome !== '' && !DEVICE_OUTCOMES.includes(outcome as DeviceOutcome)) {
    throw new BerthError('invalid', `query parameter "outcome" must be one of ${DEVICE_OUTCOMES.join(', ')}, not "${outcome}"`);
  }
  const only = outcome === undefined || outcome === '' ? undefined : (outcome as DeviceOutcome);
  const asked = url !== undefined && url.searchParams.has('limit');
  if (!asked && defaultLimit === undefined) return { ...rolloutSummary(r), devices: (await store.rolloutDevices(id, only)).map(rolloutDevice) };
  const limit = url !== undefined && asked ? intParam(url, 'limit', 100, 1, MAX_PAGE) : defaultLimit!;
  const after = url !== undefined ? intParam(url, 'after', -1, -1, Number.MAX_SAFE_INTEGER) : -1;
  // One row more than the page tells whether another page follows.
  const rows = await store.rolloutDevices(id, only, { after, limit: limit + 1 });
  const page = rows.slice(0, limit);
  return { ...rolloutSummary(r), devices: page.map(rolloutDevice), next: rows.length > limit ? page[page.length - 1]!.seq : null };
}
