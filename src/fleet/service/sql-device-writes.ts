import type { SqlQueryable } from './sql-driver.js';
import { marks, ROW_CHUNK } from './sql-rollout-writes.js';
import type { DeviceOutcome, DevicePatch, DeviceSettle, DeviceWrites, EventRecord, NewEvent, TelemetrySample } from './store.js';

/**
 * The device-message writes of the SQL store (FleetStore's DeviceWrites), over one SqlQueryable: the
 * driver itself for the store's own one-call-one-commit methods, or a transaction's handle for
 * FleetStore.batch, where many messages share one commit. Written once here so both paths run the
 * same SQL.
 */
export class SqlDeviceWrites implements DeviceWrites {
  constructor(
    private readonly q: SqlQueryable,
    /** Announces a rollout change to other processes (a NOTIFY inside the current transaction), or nothing. */
    private readonly changed: (q: SqlQueryable, rollout: string) => Promise<void>,
    /**
     * Runs a multi-statement write in its own transaction: the driver's tx when `q` is the driver,
     * undefined when `q` is already a transaction (a batch), whose commit covers it.
     */
    private readonly tx?: <T>(fn: (q: SqlQueryable) => Promise<T>) => Promise<T>,
    /** Whether `changed` writes anything (PostgreSQL): a lone settle then needs a transaction for it. */
    private readonly notifies = false,
  ) {}

  upsertDevice(id: string, patch: DevicePatch): Promise<void> {
    return this.upsertDevices([{ id, patch }]);
  }

  /**
   * One multi-row INSERT … ON CONFLICT per set of fields patched (an ingest batch has few: status,
   * reported, progress, desired, telemetry), a chunk of rows at a time.
   */
  async upsertDevices(rows: ReadonlyArray<{ readonly id: string; readonly patch: DevicePatch }>): Promise<void> {
    const groups = new Map<string, Array<Array<[string, unknown]>>>();
    for (const { id, patch } of rows) {
      const cols = deviceColumns(id, patch);
      const key = cols.map(([c]) => c).join(',');
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(cols);
    }
    for (const g of groups.values()) {
      const names = g[0]!.map(([c]) => c);
      // last_seen only moves forward: a retained message days old must not hide a newer sign of life.
      const sets = names.slice(1).map((c) => (c === 'last_seen' ? 'last_seen = CASE WHEN devices.last_seen IS NULL OR excluded.last_seen > devices.last_seen THEN excluded.last_seen ELSE devices.last_seen END' : `${c} = excluded.${c}`));
      for (const chunk of chunks(g, Math.floor(ROW_CHUNK * 4 / names.length))) {
        await this.q.run(
          `INSERT INTO devices (${names.join(', ')}) VALUES ${chunk.map(() => `(${marks(names.length)})`).join(', ')} ON CONFLICT (id) ${sets.length > 0 ? `DO UPDATE SET ${sets.join(', ')}` : 'DO NOTHING'}`,
          chunk.flatMap((cols) => cols.map(([, v]) => v)),
        );
      }
    }
  }

  /**
   * Raw samples in multi-row INSERTs, and their minutes folded in by multi-row upserts, summed here
   * first per (device, minute): one statement may not update a row twice (PostgreSQL refuses it).
   */
  async addTelemetry(samples: readonly TelemetrySample[]): Promise<void> {
    if (samples.length === 0) return;
    const has = (v: number | undefined): number => (v === undefined ? 0 : 1);
    const minutes = new Map<string, number[]>();
    for (const s of samples) {
      const minute = Math.floor(s.time / 60_000) * 60_000;
      const key = `${minute} ${s.device}`;
      const add = [s.cpuPercent ?? 0, has(s.cpuPercent), s.memoryUsedBytes ?? 0, has(s.memoryUsedBytes), s.memoryTotalBytes ?? 0, has(s.memoryTotalBytes), s.temperatureC ?? 0, has(s.temperatureC)];
      const m = minutes.get(key);
      minutes.set(key, m ? m.map((v, i) => v + add[i]!) : add);
    }
    const minuteRows = [...minutes].map(([key, sums]) => {
      const at = key.indexOf(' ');
      return [key.slice(at + 1), Number(key.slice(0, at)), ...sums];
    });
    const insert = async (q: SqlQueryable): Promise<void> => {
      for (const chunk of chunks(samples, ROW_CHUNK)) {
        await q.run(`INSERT INTO telemetry_raw (device, t, cpu, mem_used, mem_total, temp) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
          chunk.flatMap((s) => [s.device, s.time, s.cpuPercent, s.memoryUsedBytes, s.memoryTotalBytes, s.temperatureC]));
      }
      for (const chunk of chunks(minuteRows, ROW_CHUNK)) {
        await q.run(
          `INSERT INTO telemetry_minute (device, minute, cpu_sum, cpu_n, mem_used_sum, mem_used_n, mem_total_sum, mem_total_n, temp_sum, temp_n)
           VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')} ON CONFLICT (device, minute) DO UPDATE SET
           cpu_sum = telemetry_minute.cpu_sum + excluded.cpu_sum, cpu_n = telemetry_minute.cpu_n + excluded.cpu_n,
           mem_used_sum = telemetry_minute.mem_used_sum + excluded.mem_used_sum, mem_used_n = telemetry_minute.mem_used_n + excluded.mem_used_n,
           mem_total_sum = telemetry_minute.mem_total_sum + excluded.mem_total_sum, mem_total_n = telemetry_minute.mem_total_n + excluded.mem_total_n,
           temp_sum = telemetry_minute.temp_sum + excluded.temp_sum, temp_n = telemetry_minute.temp_n + excluded.temp_n`,
          chunk.flat(),
        );
      }
    };
    await (this.tx ? this.tx(insert) : insert(this.q));
  }

  async addEvent(e: NewEvent): Promise<EventRecord> {
    return (await this.addEvents([e]))[0]!;
  }

  /**
   * Multi-row INSERTs; the sequence numbers come back sorted and are given out in the order of the
   * rows: both databases number the rows of one INSERT … VALUES in order, whatever order RETURNING uses.
   */
  async addEvents(events: readonly NewEvent[]): Promise<EventRecord[]> {
    const out: EventRecord[] = [];
    for (const chunk of chunks(events, ROW_CHUNK)) {
      const rows = await this.q.all<{ seq: number }>(`INSERT INTO events (t, device, rollout, type, data) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')} RETURNING seq`,
        chunk.flatMap((e) => [e.time, e.device, e.rollout, e.type, json(e.data)]));
      const seqs = rows.map((r) => Number(r.seq)).sort((a, b) => a - b);
      chunk.forEach((e, i) => out.push({ ...e, seq: seqs[i]! }));
    }
    return out;
  }

  async sentTo(device: string): Promise<Array<{ rollout: string; revision: number }>> {
    const rows = await this.q.all("SELECT rollout_id, revision FROM rollout_devices WHERE device = ? AND outcome = 'sent'", [device]);
    return rows.map((r) => ({ rollout: String(r.rollout_id), revision: Number(r.revision) }));
  }

  async sentToEach(devices: readonly string[]): Promise<Map<string, Array<{ rollout: string; revision: number }>>> {
    const out = new Map<string, Array<{ rollout: string; revision: number }>>();
    for (let i = 0; i < devices.length; i += ROW_CHUNK) {
      const chunk = devices.slice(i, i + ROW_CHUNK);
      for (const r of await this.q.all(`SELECT device, rollout_id, revision FROM rollout_devices WHERE outcome = 'sent' AND device IN (${marks(chunk.length)}) ORDER BY rollout_id`, chunk)) {
        const device = String(r.device);
        let list = out.get(device);
        if (!list) out.set(device, (list = []));
        list.push({ rollout: String(r.rollout_id), revision: Number(r.revision) });
      }
    }
    return out;
  }

  async settleDevice(rollout: string, device: string, outcome: DeviceOutcome, at: number, error?: string): Promise<boolean> {
    return (await this.settleDevices([{ rollout, device, outcome, at, error }])).length > 0;
  }

  /**
   * A compare-and-set on `sent` for many rows in one UPDATE … FROM (VALUES …) per chunk, and one
   * notification per rollout changed. The times are cast: PostgreSQL types a VALUES list of parameters as text.
   */
  async settleDevices(settles: readonly DeviceSettle[]): Promise<Array<{ rollout: string; device: string }>> {
    if (settles.length === 0) return [];
    const run = async (q: SqlQueryable): Promise<Array<{ rollout: string; device: string }>> => {
      const settled: Array<{ rollout: string; device: string }> = [];
      for (const chunk of chunks(settles, ROW_CHUNK)) {
        const rows = await q.all(
          `UPDATE rollout_devices SET outcome = v.column3, finished_at = v.column4, error = v.column5 FROM (VALUES ${chunk.map(() => '(?, ?, ?, CAST(? AS BIGINT), ?)').join(', ')}) AS v
           WHERE rollout_devices.rollout_id = v.column1 AND rollout_devices.device = v.column2 AND rollout_devices.outcome = 'sent' RETURNING rollout_devices.rollout_id, rollout_devices.device`,
          chunk.flatMap((x) => [x.rollout, x.device, x.outcome, x.at, x.error]),
        );
        for (const r of rows) settled.push({ rollout: String(r.rollout_id), device: String(r.device) });
      }
      for (const rollout of new Set(settled.map((x) => x.rollout))) await this.changed(q, rollout);
      return settled;
    };
    // One statement needs no transaction of its own unless a notification goes with it.
    return this.tx && (this.notifies || settles.length > ROW_CHUNK) ? this.tx(run) : run(this.q);
  }

  setDevicePhase(rollout: string, device: string, phase: string): Promise<void> {
    return this.setDevicePhases([{ rollout, device, phase }]);
  }

  async setDevicePhases(phases: ReadonlyArray<{ readonly rollout: string; readonly device: string; readonly phase: string }>): Promise<void> {
    for (const chunk of chunks(phases, ROW_CHUNK)) {
      await this.q.run(
        `UPDATE rollout_devices SET phase = v.column3 FROM (VALUES ${chunk.map(() => '(?, ?, ?)').join(', ')}) AS v WHERE rollout_devices.rollout_id = v.column1 AND rollout_devices.device = v.column2`,
        chunk.flatMap((x) => [x.rollout, x.device, x.phase]),
      );
    }
  }
}

/** A device patch as (column, value) pairs, id first, in a fixed order so equal field sets group together. */
function deviceColumns(id: string, p: DevicePatch): Array<[string, unknown]> {
  const cols: Array<[string, unknown]> = [['id', id]];
  if (p.online !== undefined) cols.push(['online', p.online ? 1 : 0]);
  if (p.status !== undefined) cols.push(['status', json(p.status)]);
  if (p.reported !== undefined) cols.push(['reported', json(p.reported)]);
  if (p.desiredRevision !== undefined) cols.push(['desired_revision', p.desiredRevision]);
  if (p.phase !== undefined) cols.push(['phase', p.phase]);
  if (p.telemetry !== undefined) cols.push(['telemetry', json(p.telemetry)]);
  if (p.lastSeen !== undefined) cols.push(['last_seen', p.lastSeen]);
  return cols;
}

function* chunks<T>(xs: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < xs.length; i += size) yield xs.slice(i, i + size);
}

const json = (v: unknown): string | undefined => (v === undefined ? undefined : JSON.stringify(v));
