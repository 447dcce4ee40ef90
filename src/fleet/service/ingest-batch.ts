import type { DeviceOutcome, DevicePatch, DeviceWrites, EventRecord, NewEvent, TelemetrySample } from './store.js';

type Sent = Array<{ rollout: string; revision: number }>;

/**
 * The writes of one ingest batch (IngestWriter), inside its transaction, with fewer statements than one
 * message at a time: the `sent` rows of every device in the batch are read at once (sentToEach) rather
 * than per report or progress, and the patches of a device are merged and written once, at the end
 * (`flush`). On PostgreSQL every statement is a round trip: mid-rollout the ingest made about ten per
 * device, and the rollout waited for them.
 *
 * Why merging is the same as writing each patch in turn: nothing in the batch reads the devices table,
 * and nobody else sees the transaction before its commit; later fields win, as later writes did, and
 * lastSeen only moves forward, as the store keeps it.
 */
export class BatchWrites implements DeviceWrites {
  private readonly patches = new Map<string, Record<string, unknown>>();
  private sent = new Map<string, Sent>();
  private asked = new Set<string>();

  constructor(private readonly w: DeviceWrites) {}

  /** Reads the `sent` rows of `devices` (every device whose messages the batch holds), for sentTo. */
  async prefetch(devices: readonly string[]): Promise<void> {
    this.sent = await this.w.sentToEach(devices);
    this.asked = new Set(devices);
  }

  async upsertDevice(id: string, patch: DevicePatch): Promise<void> {
    const merged = this.patches.get(id) ?? {};
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      merged[k] = k === 'lastSeen' && typeof merged.lastSeen === 'number' ? Math.max(merged.lastSeen, v as number) : v;
    }
    this.patches.set(id, merged);
  }

  /** Writes each device's merged patch: call before the transaction commits. */
  async flush(): Promise<void> {
    for (const [id, patch] of this.patches) await this.w.upsertDevice(id, patch as DevicePatch);
    this.patches.clear();
  }

  /** The device's rows as prefetched, less those settled in this batch since (a device not prefetched is read). */
  async sentTo(device: string): Promise<Sent> {
    if (!this.asked.has(device)) return this.w.sentTo(device);
    return [...(this.sent.get(device) ?? [])];
  }

  async settleDevice(rollout: string, device: string, outcome: DeviceOutcome, at: number, error?: string): Promise<boolean> {
    // Settled here or already elsewhere: either way no longer `sent`.
    const rows = this.sent.get(device);
    if (rows) this.sent.set(device, rows.filter((r) => r.rollout !== rollout));
    return this.w.settleDevice(rollout, device, outcome, at, error);
  }

  addTelemetry(samples: readonly TelemetrySample[]): Promise<void> {
    return this.w.addTelemetry(samples);
  }

  addEvent(e: NewEvent): Promise<EventRecord> {
    return this.w.addEvent(e);
  }

  sentToEach(devices: readonly string[]): Promise<Map<string, Sent>> {
    return this.w.sentToEach(devices);
  }

  setDevicePhase(rollout: string, device: string, phase: string): Promise<void> {
    return this.w.setDevicePhase(rollout, device, phase);
  }
}
