import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { SqlQueryable } from './sql-driver.js';
import type { DeviceOutcome, NewRollout } from './store.js';

/**
 * The many-row writes of rollouts (FleetStore.createRollout and stepRollout's sends and finishes), as
 * one statement per chunk of devices rather than one per device, for both databases: on PostgreSQL each
 * statement is a round trip (a rollout of 10,000 devices took 6 s to create row by row, and every step's
 * sends 100 round trips); on SQLite each is a synchronous call on the event loop. All of them run inside
 * the caller's transaction, `q`.
 */

/**
 * Devices per statement: 500 rows × 4 parameters stays far below SQLite's 32,766 and PostgreSQL's
 * 65,535 parameters per statement, and each chunk is a few milliseconds of the event loop on SQLite.
 */
export const ROW_CHUNK = 500;

/** `?, ?, …` for `n` values. */
export const marks = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

/**
 * A new rollout's device rows, all `pending` in the given order, each revision raised above every
 * revision any rollout holds for the device, and those devices' `pending` rows in other rollouts made
 * `superseded`: a chunk of devices at a time, with the event loop served between chunks.
 *
 * Why serve the loop inside a transaction: at 10,000 devices the creation was one synchronous stretch
 * of ~300 ms on SQLite, and every API request that arrived meanwhile waited for all of it. The
 * transaction still makes the creation atomic: readers (SQLite's read connection, other PostgreSQL
 * sessions) see none of it before the commit, a crash before the commit leaves nothing (no half rollout
 * the driver could send), and this process's other writes queue behind it (SqlDriver.tx).
 */
export async function insertRolloutDevices(q: SqlQueryable, r: NewRollout, devices: ReadonlyArray<{ device: string; revision: number }>): Promise<void> {
  for (let i = 0; i < devices.length; i += ROW_CHUNK) {
    if (i > 0) await yieldToIo();
    const chunk = devices.slice(i, i + ROW_CHUNK);
    const ids = chunk.map((d) => d.device);
    // Planned outside the creation lock (from the broker's view), a revision may equal one another rollout
    // took meanwhile: the same revision with another body, which the device would ignore as already had.
    const held = new Map((await q.all(`SELECT device, MAX(revision) AS revision FROM rollout_devices WHERE device IN (${marks(ids.length)}) GROUP BY device`, ids))
      .map((x) => [String(x.device), Number(x.revision)]));
    await q.run(`UPDATE rollout_devices SET outcome = 'superseded', finished_at = ? WHERE outcome = 'pending' AND device IN (${marks(ids.length)})`, [r.createdAt, ...ids]);
    await q.run(
      `INSERT INTO rollout_devices (rollout_id, device, seq, revision, outcome) VALUES ${chunk.map(() => "(?, ?, ?, ?, 'pending')").join(', ')}`,
      chunk.flatMap((d, j) => [r.id, d.device, i + j, Math.max(d.revision, (held.get(d.device) ?? 0) + 1)]),
    );
  }
}

/**
 * Records `devices` of rollout `id` as `sent` by `instance` at `now`, each only if it is still `pending`
 * (never sent twice); returns those recorded, in the order given.
 */
export async function recordSends(q: SqlQueryable, id: string, instance: string, now: number, devices: readonly string[]): Promise<string[]> {
  const recorded = new Set<string>();
  for (let i = 0; i < devices.length; i += ROW_CHUNK) {
    const chunk = devices.slice(i, i + ROW_CHUNK);
    const rows = await q.all(
      `UPDATE rollout_devices SET outcome = 'sent', sent_at = ?, sent_by = ? WHERE rollout_id = ? AND outcome = 'pending' AND device IN (${marks(chunk.length)}) RETURNING device`,
      [now, instance, id, ...chunk],
    );
    for (const r of rows) recorded.add(String(r.device));
  }
  return devices.filter((d) => recorded.has(d));
}

/** Gives devices of rollout `id` still `sent` or `pending` their final outcome: one statement per outcome and error. */
export async function recordFinishes(q: SqlQueryable, id: string, now: number, finish: ReadonlyArray<{ readonly device: string; readonly outcome: DeviceOutcome; readonly error?: string }>): Promise<void> {
  const groups = new Map<string, { outcome: DeviceOutcome; error: string | undefined; devices: string[] }>();
  for (const f of finish) {
    const key = JSON.stringify([f.outcome, f.error ?? null]);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { outcome: f.outcome, error: f.error, devices: [] }));
    g.devices.push(f.device);
  }
  for (const g of groups.values()) {
    for (let i = 0; i < g.devices.length; i += ROW_CHUNK) {
      const chunk = g.devices.slice(i, i + ROW_CHUNK);
      await q.run(
        `UPDATE rollout_devices SET outcome = ?, finished_at = ?, error = ? WHERE rollout_id = ? AND outcome IN ('sent', 'pending') AND device IN (${marks(chunk.length)})`,
        [g.outcome, now, g.error, id, ...chunk],
      );
    }
  }
}
