/**
 * A rollout's device counts per outcome, kept on its row (n_pending, n_sent, …) by triggers on
 * rollout_devices, so a step reads one row instead of counting over 10,000 (issue 21: on PostgreSQL that
 * count was a round trip and a scan per step). Triggers rather than the writers: every statement that
 * changes an outcome (create, send, settle, time out, cancel, supersede another rollout's rows) keeps the
 * counts in its own transaction without having to remember to, so the row equals a count over the rows
 * after a crash at any point. The triggers also keep sent_count and started_at (the first send).
 *
 * These statements are migration 5's (migrations.ts): never change them once shipped; add a migration.
 */

/** The outcomes as they were at migration 5, and each one's column. */
const OUTCOMES = ['pending', 'sent', 'applied', 'failed', 'rolled-back', 'rejected', 'superseded', 'timed-out', 'not-sent'] as const;
export const countColumn = (outcome: string): string => `n_${outcome.replace(/-/g, '_')}`;

const columns = (): string[] => OUTCOMES.map((o) => `ALTER TABLE rollouts ADD COLUMN ${countColumn(o)} INTEGER NOT NULL DEFAULT 0`);
const backfill = (): string =>
  `UPDATE rollouts SET ${OUTCOMES.map((o) => `${countColumn(o)} = (SELECT COUNT(*) FROM rollout_devices WHERE rollout_id = rollouts.id AND outcome = '${o}')`).join(', ')}`;

/** SQLite: row triggers, cheap there (a call inside the process, on a row the transaction holds). */
function sqliteTriggers(): string[] {
  const sets = (sign: (o: string) => string): string => OUTCOMES.map((o) => `${countColumn(o)} = ${countColumn(o)} ${sign(o)}`).join(', ');
  return [
    `CREATE TRIGGER rollout_devices_counted_insert AFTER INSERT ON rollout_devices BEGIN
      UPDATE rollouts SET ${sets((o) => `+ (NEW.outcome = '${o}')`)}, sent_count = sent_count + (NEW.sent_at IS NOT NULL),
        started_at = COALESCE(started_at, NEW.sent_at) WHERE id = NEW.rollout_id; END`,
    `CREATE TRIGGER rollout_devices_counted_update AFTER UPDATE OF outcome, sent_at ON rollout_devices
      WHEN OLD.outcome IS NOT NEW.outcome OR (OLD.sent_at IS NULL AND NEW.sent_at IS NOT NULL) BEGIN
      UPDATE rollouts SET ${sets((o) => `+ (NEW.outcome = '${o}') - (OLD.outcome = '${o}')`)},
        sent_count = sent_count + (OLD.sent_at IS NULL AND NEW.sent_at IS NOT NULL), started_at = COALESCE(started_at, NEW.sent_at) WHERE id = NEW.rollout_id; END`,
    `CREATE TRIGGER rollout_devices_counted_delete AFTER DELETE ON rollout_devices BEGIN
      UPDATE rollouts SET ${sets((o) => `- (OLD.outcome = '${o}')`)}, sent_count = sent_count - (OLD.sent_at IS NOT NULL) WHERE id = OLD.rollout_id; END`,
  ];
}

/**
 * PostgreSQL: statement triggers over transition tables, so a statement of 500 rows updates each
 * rollout row once (a row trigger would write 500 versions of it), and a statement that changes no
 * outcome (a progress phase) writes no rollout row and so takes no lock on it. The rows are locked in id
 * order first: two ingest batches settling devices of the same two rollouts then wait for each other
 * instead of deadlocking.
 */
function postgresTriggers(): string[] {
  const fn = (name: string, delta: string, from: string, where: string): string =>
    `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      PERFORM 1 FROM rollouts WHERE id IN (SELECT rollout_id ${where}) ORDER BY id FOR UPDATE;
      UPDATE rollouts r SET ${OUTCOMES.map((o) => `${countColumn(o)} = r.${countColumn(o)} + d.${countColumn(o)}`).join(', ')},
        sent_count = r.sent_count + d.sent, started_at = COALESCE(r.started_at, d.first_sent)
      FROM (SELECT rollout_id, ${OUTCOMES.map((o) => `SUM(${delta.replaceAll('{o}', o)}) AS ${countColumn(o)}`).join(', ')}, ${from}
            ${where} GROUP BY rollout_id) d
      WHERE r.id = d.rollout_id; RETURN NULL; END $$`;
  return [
    fn('berth_counted_insert', "(n.outcome = '{o}')::int", 'SUM((n.sent_at IS NOT NULL)::int) AS sent, MIN(n.sent_at) AS first_sent', 'FROM new_rows n'),
    fn('berth_counted_update', "(n.outcome = '{o}')::int - (o.outcome = '{o}')::int",
      'SUM((o.sent_at IS NULL AND n.sent_at IS NOT NULL)::int) AS sent, MIN(CASE WHEN o.sent_at IS NULL THEN n.sent_at END) AS first_sent',
      'FROM new_rows n JOIN old_rows o USING (rollout_id, device) WHERE n.outcome <> o.outcome OR (o.sent_at IS NULL AND n.sent_at IS NOT NULL)'),
    fn('berth_counted_delete', "-(o.outcome = '{o}')::int", '-SUM((o.sent_at IS NOT NULL)::int) AS sent, NULL::bigint AS first_sent', 'FROM old_rows o'),
    'CREATE TRIGGER rollout_devices_counted_insert AFTER INSERT ON rollout_devices REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION berth_counted_insert()',
    'CREATE TRIGGER rollout_devices_counted_update AFTER UPDATE ON rollout_devices REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION berth_counted_update()',
    'CREATE TRIGGER rollout_devices_counted_delete AFTER DELETE ON rollout_devices REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION berth_counted_delete()',
  ];
}

/** Migration 5's statements for `dialect`: the columns, filled from the rows, then the triggers that keep them. */
export function rolloutCountsMigration(dialect: 'sqlite' | 'postgres'): string[] {
  return [...columns(), backfill(), ...(dialect === 'sqlite' ? sqliteTriggers() : postgresTriggers())];
}
