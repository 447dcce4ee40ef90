import crypto from 'node:crypto';
import { migrate } from './migrations.js';
import { SqlDeviceWrites } from './sql-device-writes.js';
import { insertRolloutDevices, marks, recordFinishes, recordSends } from './sql-rollout-writes.js';
import { countColumn } from './rollout-counts.js';
import { stepView } from './sql-step-view.js';
import { resumedPaceAt } from './step.js';
import type { Row, SqlDriver, SqlQueryable } from './sql-driver.js';
import {
  DEVICE_OUTCOMES, type DeviceOutcome, type DevicePatch, type DeviceSettle, type DeviceRecord, type DeviceWrites, type EventRecord, type FleetStore, type NewEvent, type NewRollout,
  type RolloutDeviceRecord, type RolloutRecord, type RolloutState, type SessionRecord, type StepDecision, type StepView, type TelemetryPoint,
  type TelemetryRetention, type TelemetrySample, type TokenRecord,
} from './store.js';

/**
 * FleetStore over SQL, once for both databases (the drivers differ only in placeholders, locking and
 * a few type words). JSON columns are TEXT, parsed here and nowhere else; times are integer ms.
 */

/** Rough on-disk bytes per row, index included, for the telemetry budget (measured on SQLite, similar on PostgreSQL). */
const RAW_ROW_BYTES = 90;
const MINUTE_ROW_BYTES = 130;
/** Ids per `IN (…)` list: bounded lists of placeholders (SQLite allows 32,766 per statement; PostgreSQL 65,535). */
const IN_CHUNK = 500;
/** Rows deleted per statement while enforcing the budget: keeps each transaction short. */
const PRUNE_BATCH = 5000;

const json = (v: unknown): string | undefined => (v === undefined ? undefined : JSON.stringify(v));
const parse = <T>(v: unknown): T | undefined => (typeof v === 'string' ? (JSON.parse(v) as T) : undefined);
const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);
const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

function tokenOf(r: Row): TokenRecord {
  const lastUsedAt = num(r.last_used_at);
  return { id: String(r.id), name: String(r.name), scope: r.scope as TokenRecord['scope'], hash: String(r.hash), createdAt: Number(r.created_at), ...(lastUsedAt !== undefined && { lastUsedAt }) };
}

export async function openSqlStore(db: SqlDriver): Promise<FleetStore> {
  await migrate(db);
  return new SqlStore(db);
}

/** The LISTEN/NOTIFY channel of rollout changes; payloads are `<origin> <rollout id>`. */
const ROLLOUTS_CHANNEL = 'berth_rollouts';

class SqlStore implements FleetStore {
  readonly dialect: 'sqlite' | 'postgres';
  /** This store's name in its notifications, so it does not wake itself. */
  private readonly origin = crypto.randomBytes(6).toString('hex');

  /** The device-message writes, each its own commit; batch() runs the same ones in a shared transaction. */
  private readonly writes: SqlDeviceWrites;

  constructor(private readonly db: SqlDriver) {
    this.dialect = db.dialect;
    this.writes = new SqlDeviceWrites(db, this.changed, (fn) => db.tx(fn), db.notify !== undefined);
  }

  batch<T>(fn: (w: DeviceWrites) => Promise<T>): Promise<T> {
    return this.db.tx((q) => fn(new SqlDeviceWrites(q, this.changed)));
  }

  upsertDevice(id: string, p: DevicePatch): Promise<void> {
    return this.writes.upsertDevice(id, p);
  }

  addTelemetry(samples: readonly TelemetrySample[]): Promise<void> {
    return this.writes.addTelemetry(samples);
  }

  addEvent(e: NewEvent): Promise<EventRecord> {
    return this.writes.addEvent(e);
  }

  sentTo(device: string): Promise<Array<{ rollout: string; revision: number }>> {
    return this.writes.sentTo(device);
  }

  sentToEach(devices: readonly string[]): Promise<Map<string, Array<{ rollout: string; revision: number }>>> {
    return this.writes.sentToEach(devices);
  }

  settleDevice(rollout: string, device: string, outcome: DeviceOutcome, at: number, error?: string): Promise<boolean> {
    return this.writes.settleDevice(rollout, device, outcome, at, error);
  }

  setDevicePhase(rollout: string, device: string, phase: string): Promise<void> {
    return this.writes.setDevicePhase(rollout, device, phase);
  }

  upsertDevices(rows: ReadonlyArray<{ readonly id: string; readonly patch: DevicePatch }>): Promise<void> {
    return this.writes.upsertDevices(rows);
  }

  addEvents(events: readonly NewEvent[]): Promise<EventRecord[]> {
    return this.writes.addEvents(events);
  }

  settleDevices(settles: readonly DeviceSettle[]): Promise<Array<{ rollout: string; device: string }>> {
    return this.writes.settleDevices(settles);
  }

  setDevicePhases(phases: ReadonlyArray<{ readonly rollout: string; readonly device: string; readonly phase: string }>): Promise<void> {
    return this.writes.setDevicePhases(phases);
  }

  async getDevice(id: string): Promise<DeviceRecord | undefined> {
    const rows = await this.db.all('SELECT * FROM devices WHERE id = ?', [id]);
    return rows[0] && deviceOf(rows[0]);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (await this.db.all('SELECT * FROM devices ORDER BY id')).map(deviceOf);
  }

  async deviceIds(): Promise<string[]> {
    return (await this.db.all('SELECT id FROM devices ORDER BY id')).map((r) => String(r.id));
  }

  async devicesByIds(ids: readonly string[]): Promise<DeviceRecord[]> {
    const out: DeviceRecord[] = [];
    for (let i = 0; i < ids.length; i += IN_CHUNK) {
      const chunk = ids.slice(i, i + IN_CHUNK);
      out.push(...(await this.db.all(`SELECT * FROM devices WHERE id IN (${marks(chunk.length)}) ORDER BY id`, chunk)).map(deviceOf));
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async telemetry(device: string, from: number, to: number, resolution: 'raw' | 'minute'): Promise<TelemetryPoint[]> {
    if (resolution === 'raw') {
      const rows = await this.db.all('SELECT t, cpu, mem_used, mem_total, temp FROM telemetry_raw WHERE device = ? AND t >= ? AND t <= ? ORDER BY t', [device, from, to]);
      return rows.map((r) => point(Number(r.t), r.cpu, r.mem_used, r.mem_total, r.temp));
    }
    const rows = await this.db.all('SELECT * FROM telemetry_minute WHERE device = ? AND minute >= ? AND minute <= ? ORDER BY minute', [device, Math.floor(from / 60_000) * 60_000, to]);
    const avg = (sum: unknown, n: unknown): number | undefined => (Number(n) > 0 ? Number(sum) / Number(n) : undefined);
    return rows.map((r) => point(Number(r.minute), avg(r.cpu_sum, r.cpu_n), avg(r.mem_used_sum, r.mem_used_n), avg(r.mem_total_sum, r.mem_total_n), avg(r.temp_sum, r.temp_n)));
  }

  async pruneTelemetry(r: TelemetryRetention, now: number): Promise<number> {
    let deleted = await this.db.run('DELETE FROM telemetry_raw WHERE t < ?', [now - r.rawMs]);
    deleted += await this.db.run('DELETE FROM telemetry_minute WHERE minute < ?', [now - r.minuteMs]);
    // Over the budget: the oldest raw samples go first (their minutes remain), then the oldest minutes.
    for (const [table, time] of [['telemetry_raw', 't'], ['telemetry_minute', 'minute']] as const) {
      for (;;) {
        const over = (await this.telemetryBytes()) - r.budgetBytes;
        if (over <= 0) return deleted;
        const rows = Math.min(PRUNE_BATCH, Math.ceil(over / (table === 'telemetry_raw' ? RAW_ROW_BYTES : MINUTE_ROW_BYTES)));
        const cut = await this.db.all(`SELECT ${time} AS t FROM ${table} ORDER BY ${time} LIMIT 1 OFFSET ?`, [rows - 1]);
        const n = cut[0] === undefined ? await this.db.run(`DELETE FROM ${table}`) : await this.db.run(`DELETE FROM ${table} WHERE ${time} <= ?`, [Number(cut[0].t)]);
        deleted += n;
        if (n === 0) break;
      }
    }
    return deleted;
  }

  async telemetryBytes(): Promise<number> {
    const rows = await this.db.all<{ raw: number; minute: number }>('SELECT (SELECT COUNT(*) FROM telemetry_raw) AS raw, (SELECT COUNT(*) FROM telemetry_minute) AS minute');
    return Number(rows[0]!.raw) * RAW_ROW_BYTES + Number(rows[0]!.minute) * MINUTE_ROW_BYTES;
  }

  async events(q: { device?: string; before?: number; limit: number }): Promise<EventRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.device !== undefined) where.push('device = ?') && params.push(q.device);
    if (q.before !== undefined) where.push('seq < ?') && params.push(q.before);
    const rows = await this.db.all(`SELECT * FROM events ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`, [...params, q.limit]);
    return rows.map((r) => ({
      seq: Number(r.seq), time: Number(r.t), type: String(r.type), data: parse<Record<string, unknown>>(r.data) ?? {},
      ...(r.device != null && { device: String(r.device) }), ...(r.rollout != null && { rollout: String(r.rollout) }),
    }));
  }

  async createRollout(r: NewRollout, devices: ReadonlyArray<{ device: string; revision: number }>): Promise<RolloutRecord> {
    await this.db.tx(async (q) => {
      if (this.db.rolloutLock !== undefined) await q.run(this.db.rolloutLock);
      // Superseding another rollout's pending rows changes its counts (a trigger writes its row): take
      // those rows first, as a step does (rollout row, then device rows), or the two would deadlock.
      // Pending rows are only in unfinished rollouts.
      if (this.db.forUpdate !== '') await q.all(`SELECT id FROM rollouts WHERE finished_at IS NULL ORDER BY id${this.db.forUpdate}`);
      await q.run('INSERT INTO rollouts (id, name, state, created_at, created_by, policy, images, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [r.id, r.name, r.state, r.createdAt, r.createdBy, json(r.policy), json(r.images), r.body]);
      await insertRolloutDevices(q, r, devices);
      await this.changed(q, r.id);
    });
    return (await this.getRollout(r.id))!;
  }

  async getRollout(id: string): Promise<RolloutRecord | undefined> {
    return (await this.rollouts(this.db, 'WHERE id = ?', [id]))[0];
  }

  async listRollouts(limit: number): Promise<RolloutRecord[]> {
    return this.rollouts(this.db, 'ORDER BY created_at DESC, id DESC LIMIT ?', [limit]);
  }

  private async rollouts(q: SqlQueryable, tail: string, params: unknown[], lock = ''): Promise<RolloutRecord[]> {
    // The counts are on the row (migration 5's triggers): no count over the rollout's devices.
    return (await q.all(`SELECT * FROM rollouts ${tail}${lock}`, params)).map(rolloutOf);
  }

  async rolloutDevices(id: string, outcome?: DeviceOutcome, page?: { readonly after: number; readonly limit: number }): Promise<RolloutDeviceRecord[]> {
    const where = ['rollout_id = ?'];
    const params: unknown[] = [id];
    if (outcome !== undefined) where.push('outcome = ?') && params.push(outcome);
    if (page !== undefined) where.push('seq > ?') && params.push(page.after);
    // The primary key's (rollout_id, …) and migration 2's (rollout_id, outcome, seq) index serve both forms.
    const rows = await this.db.all(`SELECT * FROM rollout_devices WHERE ${where.join(' AND ')} ORDER BY seq${page !== undefined ? ' LIMIT ?' : ''}`, page !== undefined ? [...params, page.limit] : params);
    return rows.map(rolloutDeviceOf);
  }

  async rolloutDevicesOf(id: string, devices: readonly string[]): Promise<RolloutDeviceRecord[]> {
    const out: RolloutDeviceRecord[] = [];
    for (let i = 0; i < devices.length; i += IN_CHUNK) {
      const chunk = devices.slice(i, i + IN_CHUNK);
      out.push(...(await this.db.all(`SELECT * FROM rollout_devices WHERE rollout_id = ? AND device IN (${marks(chunk.length)})`, [id, ...chunk])).map(rolloutDeviceOf));
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  async unfinishedRollouts(): Promise<string[]> {
    return (await this.db.all('SELECT id FROM rollouts WHERE finished_at IS NULL ORDER BY created_at')).map((r) => String(r.id));
  }

  async transitionRollout(id: string, from: readonly RolloutState[], to: RolloutState, now: number): Promise<RolloutRecord | undefined> {
    const changed = await this.db.tx(async (q) => {
      const n = await q.run(`UPDATE rollouts SET state = ? WHERE id = ? AND state IN (${marks(from.length)})`, [to, id, ...from]);
      if (n > 0 && to === 'cancelled') await q.run("UPDATE rollout_devices SET outcome = 'not-sent' WHERE rollout_id = ? AND outcome = 'pending'", [id]);
      if (n > 0 && to === 'running') {
        const row = (await q.all('SELECT * FROM rollouts WHERE id = ?', [id]))[0]!;
        await q.run('UPDATE rollouts SET pace_at = ?, pace_sent = sent_count WHERE id = ?', [resumedPaceAt(rolloutOf(row), now), id]);
      }
      if (n > 0) await this.changed(q, id);
      return n > 0;
    });
    return changed ? this.getRollout(id) : undefined;
  }

  async stepRollout(id: string, instance: string, now: number, maxSend: number, decide: (r: RolloutRecord, view: StepView) => StepDecision): Promise<Array<{ device: string; revision: number }>> {
    return this.db.tx(async (q) => {
      const [rollout] = await this.rollouts(q, 'WHERE id = ?', [id], this.db.forUpdate);
      if (!rollout || rollout.finishedAt !== undefined) return [];
      const { next, expired, oldestInFlightAt } = await stepView(q, id, maxSend, now - rollout.policy.timeoutMs);
      const d = decide(rollout, { next: next.map((x) => x.device), expired, ...(oldestInFlightAt !== undefined && { oldestInFlightAt }) });
      const revisions = new Map(next.map((x) => [x.device, x.revision]));
      // Only devices of `next` (a stale decision's others are not pending): never sent twice.
      const recorded = await recordSends(q, id, instance, now, (d.send ?? []).filter((device) => revisions.has(device)));
      // sent_count and started_at follow in the triggers (migration 5).
      const sent = recorded.map((device) => ({ device, revision: revisions.get(device)! }));
      if (d.finish !== undefined) await recordFinishes(q, id, now, d.finish);
      if (d.dropPending) await q.run("UPDATE rollout_devices SET outcome = 'not-sent', finished_at = ? WHERE rollout_id = ? AND outcome = 'pending'", [now, id]);
      if (d.state) {
        await q.run('UPDATE rollouts SET state = ?, abort_reason = COALESCE(?, abort_reason), finished_at = ? WHERE id = ?', [d.state.state, d.state.reason, d.state.finished ? now : undefined, id]);
      }
      if (d.send !== undefined || d.finish !== undefined || d.dropPending === true || d.state !== undefined) await this.changed(q, id);
      return sent;
    });
  }

  async openRevisions(): Promise<Map<string, number>> {
    const rows = await this.db.all("SELECT device, MAX(revision) AS revision FROM rollout_devices WHERE outcome IN ('pending', 'sent') GROUP BY device");
    return new Map(rows.map((r) => [String(r.device), Number(r.revision)]));
  }

  async addToken(t: TokenRecord): Promise<void> {
    await this.db.run('INSERT INTO tokens (id, name, scope, hash, created_at) VALUES (?, ?, ?, ?, ?)', [t.id, t.name, t.scope, t.hash, t.createdAt]);
  }

  async tokenByHash(hash: string): Promise<TokenRecord | undefined> {
    const r = (await this.db.all('SELECT * FROM tokens WHERE hash = ?', [hash]))[0];
    return r && tokenOf(r);
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (await this.db.all('SELECT * FROM tokens ORDER BY created_at, id')).map(tokenOf);
  }

  async touchToken(id: string, at: number): Promise<void> {
    await this.db.run('UPDATE tokens SET last_used_at = ? WHERE id = ?', [at, id]);
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.db.tx(async (q) => {
      await q.run('DELETE FROM sessions WHERE token_id = ?', [id]);
      return (await q.run('DELETE FROM tokens WHERE id = ?', [id])) > 0;
    });
  }

  async addSession(s: SessionRecord): Promise<void> {
    await this.db.run('INSERT INTO sessions (hash, token_id, scope, csrf, expires_at) VALUES (?, ?, ?, ?, ?)', [s.hash, s.tokenId, s.scope, s.csrf, s.expiresAt]);
  }

  async sessionByHash(hash: string, now: number): Promise<SessionRecord | undefined> {
    const r = (await this.db.all('SELECT * FROM sessions WHERE hash = ? AND expires_at > ?', [hash, now]))[0];
    return r && { hash: String(r.hash), tokenId: String(r.token_id), scope: r.scope as SessionRecord['scope'], csrf: String(r.csrf), expiresAt: Number(r.expires_at) };
  }

  async deleteSession(hash: string): Promise<void> {
    await this.db.run('DELETE FROM sessions WHERE hash = ?', [hash]);
  }

  async watchRollouts(fn: (rollout: string) => void): Promise<() => Promise<void>> {
    if (!this.db.listen) return async () => undefined;
    return this.db.listen(ROLLOUTS_CHANNEL, (payload) => {
      const [origin, id] = payload.split(' ');
      if (origin !== this.origin && id) fn(id);
    });
  }

  /** Tells the other processes on the database that rollout `id` changed (delivered at commit). */
  private readonly changed = async (q: SqlQueryable, id: string): Promise<void> => {
    if (this.db.notify !== undefined) await q.run(this.db.notify, [ROLLOUTS_CHANNEL, `${this.origin} ${id}`]);
  };

  close(): Promise<void> {
    return this.db.close();
  }
}

function point(time: number, cpu: unknown, used: unknown, total: unknown, temp: unknown): TelemetryPoint {
  const [c, u, t, k] = [num(cpu), num(used), num(total), num(temp)];
  return { time, ...(c !== undefined && { cpuPercent: c }), ...(u !== undefined && { memoryUsedBytes: u }), ...(t !== undefined && { memoryTotalBytes: t }), ...(k !== undefined && { temperatureC: k }) };
}

function deviceOf(r: Row): DeviceRecord {
  const status = parse<Record<string, unknown>>(r.status);
  const reported = parse<Record<string, unknown>>(r.reported);
  const telemetry = parse<TelemetrySample>(r.telemetry);
  const lastSeen = num(r.last_seen);
  const desiredRevision = num(r.desired_revision);
  const phase = opt(r.phase as string | null);
  return {
    id: String(r.id), online: Number(r.online) === 1,
    ...(lastSeen !== undefined && { lastSeen }), ...(status && { status }), ...(reported && { reported }),
    ...(desiredRevision !== undefined && { desiredRevision }), ...(phase !== undefined && { phase }), ...(telemetry && { telemetry }),
  };
}

function rolloutOf(r: Row): RolloutRecord {
  const byOutcome = Object.fromEntries(DEVICE_OUTCOMES.map((o) => [o, Number(r[countColumn(o)] ?? 0)])) as Record<DeviceOutcome, number>;
  const total = DEVICE_OUTCOMES.reduce((n, o) => n + byOutcome[o], 0);
  const [finishedAt, startedAt, paceAt] = [num(r.finished_at), num(r.started_at), num(r.pace_at)];
  const abortReason = opt(r.abort_reason as string | null);
  return {
    id: String(r.id), name: String(r.name), state: r.state as RolloutState, createdAt: Number(r.created_at), createdBy: String(r.created_by),
    policy: parse(r.policy)!, images: parse(r.images)!, body: String(r.body), counts: { ...byOutcome, total }, sentCount: Number(r.sent_count ?? 0),
    ...(finishedAt !== undefined && { finishedAt }), ...(abortReason !== undefined && { abortReason }), ...(startedAt !== undefined && { startedAt }),
    ...(paceAt !== undefined && { pace: { at: paceAt, sent: Number(r.pace_sent ?? 0) } }),
  };
}

function rolloutDeviceOf(r: Row): RolloutDeviceRecord {
  const [sentAt, finishedAt] = [num(r.sent_at), num(r.finished_at)];
  const [sentBy, phase, error] = [opt(r.sent_by as string | null), opt(r.phase as string | null), opt(r.error as string | null)];
  return {
    device: String(r.device), seq: Number(r.seq), revision: Number(r.revision), outcome: r.outcome as DeviceOutcome,
    ...(sentAt !== undefined && { sentAt }), ...(finishedAt !== undefined && { finishedAt }), ...(sentBy !== undefined && { sentBy }),
    ...(phase !== undefined && { phase }), ...(error !== undefined && { error }),
  };
}
