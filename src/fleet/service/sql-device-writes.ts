import type { SqlQueryable } from './sql-driver.js';
import { marks, ROW_CHUNK } from './sql-rollout-writes.js';
import type { DeviceOutcome, DevicePatch, DeviceWrites, EventRecord, NewEvent, TelemetrySample } from './store.js';

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

  async upsertDevice(id: string, p: DevicePatch): Promise<void> {
    const cols: Array<[string, unknown]> = [];
    if (p.online !== undefined) cols.push(['online', p.online ? 1 : 0]);
    if (p.status !== undefined) cols.push(['status', json(p.status)]);
    if (p.reported !== undefined) cols.push(['reported', json(p.reported)]);
    if (p.desiredRevision !== undefined) cols.push(['desired_revision', p.desiredRevision]);
    if (p.phase !== undefined) cols.push(['phase', p.phase]);
    if (p.telemetry !== undefined) cols.push(['telemetry', json(p.telemetry)]);
    if (p.lastSeen !== undefined) cols.push(['last_seen', p.lastSeen]);
    const names = ['id', ...cols.map(([c]) => c)];
    // last_seen only moves forward: a retained message days old must not hide a newer sign of life.
    const sets = cols.map(([c]) => (c === 'last_seen' ? 'last_seen = CASE WHEN devices.last_seen IS NULL OR excluded.last_seen > devices.last_seen THEN excluded.last_seen ELSE devices.last_seen END' : `${c} = excluded.${c}`));
    await this.q.run(
      `INSERT INTO devices (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')}) ON CONFLICT (id) ${sets.length > 0 ? `DO UPDATE SET ${sets.join(', ')}` : 'DO NOTHING'}`,
      [id, ...cols.map(([, v]) => v)],
    );
  }

  async addTelemetry(samples: readonly TelemetrySample[]): Promise<void> {
    if (samples.length === 0) return;
    const insert = async (q: SqlQueryable): Promise<void> => {
      for (const s of samples) {
        await q.run('INSERT INTO telemetry_raw (device, t, cpu, mem_used, mem_total, temp) VALUES (?, ?, ?, ?, ?, ?)', [s.device, s.time, s.cpuPercent, s.memoryUsedBytes, s.memoryTotalBytes, s.temperatureC]);
        const has = (v: number | undefined): number => (v === undefined ? 0 : 1);
        await q.run(
          `INSERT INTO telemetry_minute (device, minute, cpu_sum, cpu_n, mem_used_sum, mem_used_n, mem_total_sum, mem_total_n, temp_sum, temp_n)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, minute) DO UPDATE SET
           cpu_sum = telemetry_minute.cpu_sum + excluded.cpu_sum, cpu_n = telemetry_minute.cpu_n + excluded.cpu_n,
           mem_used_sum = telemetry_minute.mem_used_sum + excluded.mem_used_sum, mem_used_n = telemetry_minute.mem_used_n + excluded.mem_used_n,
           mem_total_sum = telemetry_minute.mem_total_sum + excluded.mem_total_sum, mem_total_n = telemetry_minute.mem_total_n + excluded.mem_total_n,
           temp_sum = telemetry_minute.temp_sum + excluded.temp_sum, temp_n = telemetry_minute.temp_n + excluded.temp_n`,
          [s.device, Math.floor(s.time / 60_000) * 60_000, s.cpuPercent ?? 0, has(s.cpuPercent), s.memoryUsedBytes ?? 0, has(s.memoryUsedBytes),
            s.memoryTotalBytes ?? 0, has(s.memoryTotalBytes), s.temperatureC ?? 0, has(s.temperatureC)],
        );
      }
    };
    await (this.tx ? this.tx(insert) : insert(this.q));
  }

  async addEvent(e: NewEvent): Promise<EventRecord> {
    const rows = await this.q.all<{ seq: number }>('INSERT INTO events (t, device, rollout, type, data) VALUES (?, ?, ?, ?, ?) RETURNING seq', [e.time, e.device, e.rollout, e.type, json(e.data)]);
    return { ...e, seq: Number(rows[0]!.seq) };
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
    const run = async (q: SqlQueryable): Promise<boolean> => {
      const settled = (await q.run("UPDATE rollout_devices SET outcome = ?, finished_at = ?, error = ? WHERE rollout_id = ? AND device = ? AND outcome = 'sent'", [outcome, at, error, rollout, device])) > 0;
      if (settled) await this.changed(q, rollout);
      return settled;
    };
    // One statement needs no transaction of its own unless a notification goes with it.
    return this.tx && this.notifies ? this.tx(run) : run(this.q);
  }

  async setDevicePhase(rollout: string, device: string, phase: string): Promise<void> {
    await this.q.run('UPDATE rollout_devices SET phase = ? WHERE rollout_id = ? AND device = ?', [phase, rollout, device]);
  }
}

const json = (v: unknown): string | undefined => (v === undefined ? undefined : JSON.stringify(v));
