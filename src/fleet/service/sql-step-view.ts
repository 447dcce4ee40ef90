import type { SqlQueryable } from './sql-driver.js';

/**
 * What a rollout step reads besides the rollout's row (FleetStore.stepRollout's StepView): the next
 * pending devices in order, the sent ones past the timeout, and the oldest send still in flight, in one
 * statement (on PostgreSQL each statement is a round trip; these were three). Each part is an index range
 * (migration 2), bounded by what the step acts on, not by the rollout's size. Runs in the step's transaction.
 */
export async function stepView(q: SqlQueryable, id: string, maxSend: number, expiredBy: number): Promise<{
  next: Array<{ device: string; revision: number }>;
  expired: string[];
  oldestInFlightAt: number | undefined;
}> {
  // Each part in a subquery of its own: SQLite takes ORDER BY/LIMIT only on a whole compound SELECT.
  const rows = await q.all(
    `SELECT * FROM (SELECT 'next' AS part, device, revision, seq AS k FROM rollout_devices WHERE rollout_id = ? AND outcome = 'pending' ORDER BY seq LIMIT ?) n
     UNION ALL SELECT * FROM (SELECT 'expired' AS part, device, revision, sent_at AS k FROM rollout_devices WHERE rollout_id = ? AND outcome = 'sent' AND sent_at <= ?) e
     UNION ALL SELECT 'oldest' AS part, NULL, NULL, MIN(sent_at) FROM rollout_devices WHERE rollout_id = ? AND outcome = 'sent'`,
    [id, maxSend, id, expiredBy, id],
  );
  const next: Array<{ device: string; revision: number; k: number }> = [];
  const expired: Array<{ device: string; k: number }> = [];
  let oldestInFlightAt: number | undefined;
  for (const r of rows) {
    if (r.part === 'next') next.push({ device: String(r.device), revision: Number(r.revision), k: Number(r.k) });
    else if (r.part === 'expired') expired.push({ device: String(r.device), k: Number(r.k) });
    else if (r.k !== null && r.k !== undefined) oldestInFlightAt = Number(r.k);
  }
  // A UNION ALL keeps no order across its parts: sorted here, as each part was read before.
  next.sort((a, b) => a.k - b.k);
  expired.sort((a, b) => a.k - b.k);
  return { next: next.map(({ device, revision }) => ({ device, revision })), expired: expired.map((e) => e.device), oldestInFlightAt };
}
