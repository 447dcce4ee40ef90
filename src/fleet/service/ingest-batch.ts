import type { DeviceOutcome, DevicePatch, DeviceWrites, EventRecord, NewEvent } from './store.js';

type Sent = Array<{ rollout: string; revision: number }>;

/** What one ingest batch stored, for the bus updates announced after its commit. */
export interface BatchResult {
  /** The batch's events, in the order they were added, with their sequence numbers. */
  readonly events: EventRecord[];
  /** The rollout devices the batch settled (those still `sent` when it was written). */
  readonly settled: Array<{ rollout: string; device: string }>;
}

/**
 * The writes of one ingest batch (IngestWriter), inside its transaction, each kind in one statement for
 * the whole batch (DeviceWrites' plural writes) rather than one per message: on PostgreSQL every
 * statement is a round trip, and mid-rollout a batch of 500 messages made about 520 of them, which the
 * rollout waited for. The `sent` rows of every device in the batch are read at once (prefetch); the
 * patches of a device are merged; events, settles and phases are queued; `flush` writes it all.
 *
 * Why this is the same as writing each message in turn: nothing in the batch reads back what it
 * writes except the `sent` rows, kept here (a settle removes its row, as the database would); nobody
 * else sees the transaction before its commit; later fields and phases win, as later writes did;
 * lastSeen only moves forward, as the store keeps it; and a settle is still a compare-and-set on
 * `sent` when written, so one that another instance settled first is not counted.
 */
export class BatchWrites {
  private readonly patches = new Map<string, Record<string, unknown>>();
  private sent = new Map<string, Sent>();
  private asked = new Set<string>();
  private readonly events: NewEvent[] = [];
  private readonly settles: Array<{ rollout: string; device: string; outcome: DeviceOutcome; at: number; error: string | undefined }> = [];
  private readonly phases = new Map<string, { rollout: string; device: string; phase: string }>();

  constructor(private readonly w: DeviceWrites) {}

  /** Reads the `sent` rows of `devices` (every device whose messages the batch holds), for sentTo. */
  async prefetch(devices: readonly string[]): Promise<void> {
    this.sent = await this.w.sentToEach(devices);
    this.asked = new Set(devices);
  }

  upsertDevice(id: string, patch: DevicePatch): void {
    const merged = this.patches.get(id) ?? {};
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      merged[k] = k === 'lastSeen' && typeof merged.lastSeen === 'number' ? Math.max(merged.lastSeen, v as number) : v;
    }
    this.patches.set(id, merged);
  }

  /** The device's rows as prefetched, less those settled in this batch since (a device not prefetched is read). */
  async sentTo(device: string): Promise<Sent> {
    if (!this.asked.has(device)) return this.w.sentTo(device);
    return [...(this.sent.get(device) ?? [])];
  }

  settleDevice(rollout: string, device: string, outcome: DeviceOutcome, at: number, error?: string): void {
    // Settled here or already elsewhere: either way no longer `sent`.
    const rows = this.sent.get(device);
    if (rows) this.sent.set(device, rows.filter((r) => r.rollout !== rollout));
    this.settles.push({ rollout, device, outcome, at, error });
  }

  setDevicePhase(rollout: string, device: string, phase: string): void {
    this.phases.set(JSON.stringify([rollout, device]), { rollout, device, phase });
  }

  addEvent(e: NewEvent): void {
    this.events.push(e);
  }

  /** Writes what the batch queued: call before the transaction commits. */
  async flush(): Promise<BatchResult> {
    const settled = await this.w.settleDevices(this.settles);
    await this.w.setDevicePhases([...this.phases.values()]);
    const events = this.events.length > 0 ? await this.w.addEvents(this.events) : [];
    if (this.patches.size > 0) await this.w.upsertDevices([...this.patches].map(([id, patch]) => ({ id, patch: patch as DevicePatch })));
    return { events, settled };
  }
}
