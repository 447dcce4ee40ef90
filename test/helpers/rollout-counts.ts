import { expect } from 'vitest';
import { countColumn } from '../../src/fleet/service/rollout-counts.js';
import { DEVICE_OUTCOMES } from '../../src/fleet/service/store.js';

const COLUMNS = ['sent_count', ...DEVICE_OUTCOMES.map(countColumn)];

/**
 * One SELECT (so one snapshot, on either database) of every rollout's counts on its row beside a count
 * over its device rows, for expectCountsAgree: the row's counts are kept by triggers (migration 5) and
 * must equal the rows' after a crash at any point.
 */
export const COUNTS_AGREE_SQL = `SELECT r.id, r.sent_count, (SELECT COUNT(sent_at) FROM rollout_devices d WHERE d.rollout_id = r.id) AS c_sent_count,
  ${DEVICE_OUTCOMES.map((o) => `r.${countColumn(o)}, (SELECT COUNT(*) FROM rollout_devices d WHERE d.rollout_id = r.id AND d.outcome = '${o}') AS c_${countColumn(o)}`).join(', ')}
  FROM rollouts r`;

/** Expects each row of COUNTS_AGREE_SQL's answer to hold equal counts; `when` names the moment in a failure. */
export function expectCountsAgree(rows: ReadonlyArray<Record<string, unknown>>, when: string): void {
  expect(rows.length, when).toBeGreaterThan(0);
  for (const r of rows) {
    for (const col of COLUMNS) expect([when, r.id, col, Number(r[col])]).toEqual([when, r.id, col, Number(r[`c_${col}`])]);
  }
}
