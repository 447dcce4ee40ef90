import { BerthError } from '../../errors.js';
import { rolloutCountsMigration } from './rollout-counts.js';
import type { SqlDriver } from './sql-driver.js';

/**
 * The fleet service's schema, as numbered migrations applied in order and recorded in
 * schema_migrations: a database made by an older berth is brought forward at start, and one made by a
 * newer berth is refused (its tables may mean something this version does not know). Written once for
 * both dialects: `{serial}`, `{bigint}` and `{real}` become each driver's words (a migration that cannot be,
 * such as triggers, is a function of the dialect). Never edit a
 * migration that has shipped; add the next one.
 */
const MIGRATIONS: ReadonlyArray<{ version: number; sql: readonly string[] | ((dialect: 'sqlite' | 'postgres') => readonly string[]) }> = [
  {
    version: 1,
    sql: [
      `CREATE TABLE devices (id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0, last_seen {bigint}, status TEXT, reported TEXT,
        desired_revision {bigint}, phase TEXT, telemetry TEXT)`,
      `CREATE TABLE telemetry_raw (device TEXT NOT NULL, t {bigint} NOT NULL, cpu {real}, mem_used {real}, mem_total {real}, temp {real})`,
      'CREATE INDEX telemetry_raw_device_t ON telemetry_raw (device, t)',
      'CREATE INDEX telemetry_raw_t ON telemetry_raw (t)',
      // Sums and counts, not averages: a sample folds in with one upsert, whichever instance got it.
      `CREATE TABLE telemetry_minute (device TEXT NOT NULL, minute {bigint} NOT NULL,
        cpu_sum {real} NOT NULL DEFAULT 0, cpu_n INTEGER NOT NULL DEFAULT 0, mem_used_sum {real} NOT NULL DEFAULT 0, mem_used_n INTEGER NOT NULL DEFAULT 0,
        mem_total_sum {real} NOT NULL DEFAULT 0, mem_total_n INTEGER NOT NULL DEFAULT 0, temp_sum {real} NOT NULL DEFAULT 0, temp_n INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (device, minute))`,
      'CREATE INDEX telemetry_minute_minute ON telemetry_minute (minute)',
      'CREATE TABLE events (seq {serial}, t {bigint} NOT NULL, device TEXT, rollout TEXT, type TEXT NOT NULL, data TEXT NOT NULL)',
      'CREATE INDEX events_device_seq ON events (device, seq)',
      `CREATE TABLE rollouts (id TEXT PRIMARY KEY, name TEXT NOT NULL, state TEXT NOT NULL, abort_reason TEXT, created_at {bigint} NOT NULL,
        finished_at {bigint}, created_by TEXT NOT NULL, policy TEXT NOT NULL, images TEXT NOT NULL, body TEXT NOT NULL)`,
      'CREATE INDEX rollouts_created ON rollouts (created_at)',
      `CREATE TABLE rollout_devices (rollout_id TEXT NOT NULL REFERENCES rollouts (id), device TEXT NOT NULL, seq INTEGER NOT NULL,
        revision {bigint} NOT NULL, outcome TEXT NOT NULL, sent_at {bigint}, sent_by TEXT, finished_at {bigint}, phase TEXT, error TEXT,
        PRIMARY KEY (rollout_id, device))`,
      'CREATE INDEX rollout_devices_device_outcome ON rollout_devices (device, outcome)',
      'CREATE TABLE tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at {bigint} NOT NULL)',
      'CREATE TABLE sessions (hash TEXT PRIMARY KEY, token_id TEXT NOT NULL, scope TEXT NOT NULL, csrf TEXT NOT NULL, expires_at {bigint} NOT NULL)',
    ],
  },
  {
    // Steps read a summary instead of every device row (issue 21's 10,000-device benchmark): the send
    // counter and first send time, the pace restarted by a resume, and indexes for the pending devices in
    // order and the sent ones by time.
    version: 2,
    sql: [
      'ALTER TABLE rollouts ADD COLUMN started_at {bigint}',
      'ALTER TABLE rollouts ADD COLUMN sent_count INTEGER NOT NULL DEFAULT 0',
      'ALTER TABLE rollouts ADD COLUMN pace_at {bigint}',
      'ALTER TABLE rollouts ADD COLUMN pace_sent INTEGER',
      "UPDATE rollouts SET started_at = (SELECT MIN(sent_at) FROM rollout_devices WHERE rollout_id = rollouts.id), sent_count = (SELECT COUNT(sent_at) FROM rollout_devices WHERE rollout_id = rollouts.id)",
      'CREATE INDEX rollout_devices_outcome_seq ON rollout_devices (rollout_id, outcome, seq)',
      'CREATE INDEX rollout_devices_outcome_sent ON rollout_devices (rollout_id, outcome, sent_at)',
    ],
  },
  {
    // Token management (GET /api/v1/tokens): when each token was last used.
    version: 3,
    sql: ['ALTER TABLE tokens ADD COLUMN last_used_at {bigint}'],
  },
  {
    // GET /api/v1/rollouts/{id}?limit= reads a rollout's devices a page at a time in sending order.
    version: 4,
    sql: ['CREATE INDEX rollout_devices_seq ON rollout_devices (rollout_id, seq)'],
  },
  {
    // Issue 21 (PostgreSQL round trips): each rollout's counts per outcome on its row, kept by triggers
    // in the same transaction as the outcomes (rollout-counts.ts); written per dialect (trigger syntax).
    version: 5,
    sql: rolloutCountsMigration,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings the database to SCHEMA_VERSION (or to `target`, below it: for tests of a migration over an
 * older database's rows); returns the versions applied. Safe to run from several processes at once.
 */
export async function migrate(db: SqlDriver, now = Date.now(), target = SCHEMA_VERSION): Promise<number[]> {
  const words = (sql: string): string => sql.replaceAll('{serial}', db.types.serialKey).replaceAll('{bigint}', db.types.bigint).replaceAll('{real}', db.types.real);
  return db.tx(async (q) => {
    if (db.migrationLock !== undefined) await q.run(db.migrationLock);
    await q.run(words('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at {bigint} NOT NULL)'));
    const rows = await q.all<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    const current = Number(rows[0]?.v ?? 0);
    if (current > SCHEMA_VERSION) {
      throw new BerthError('conflict', `the database's schema is version ${current}, newer than this berth knows (${SCHEMA_VERSION})`, { hint: 'run the newer berth, or restore a backup' });
    }
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (m.version <= current || m.version > target) continue;
      for (const statement of typeof m.sql === 'function' ? m.sql(db.dialect) : m.sql) await q.run(words(statement));
      await q.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [m.version, now]);
      applied.push(m.version);
    }
    return applied;
  });
}
