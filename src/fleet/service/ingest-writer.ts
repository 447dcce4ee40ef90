import { setImmediate as yieldToIo } from 'node:timers/promises';
import { appOutcome, reportOutcome } from '../deploy.js';
import type { FleetChange, FleetView } from '../view.js';
import { BatchWrites } from './ingest-batch.js';
import type { FleetBus, FleetUpdate } from './bus.js';
import type { DeviceWrites, FleetStore, TelemetrySample } from './store.js';

/** How device messages are grouped into transactions (IngestWriter). */
export interface IngestBatching {
  /** The longest a message waits before its batch is written (ms). */
  readonly windowMs: number;
  /** A batch is written as soon as it holds this many messages: bounds how long one commit holds the event loop. */
  readonly maxMessages: number;
  /** Telemetry, most of the traffic and never urgent, is written once per this interval (ms). */
  readonly telemetryMs: number;
}

export const DEFAULT_BATCHING: IngestBatching = { windowMs: 50, maxMessages: 500, telemetryMs: 1000 };

/** Tries of one batch's transaction before its messages are given up (reported to onError). */
const COMMIT_ATTEMPTS = 3;

/**
 * Device messages → the store, a batch per transaction. Each message written with its own commit
 * made the service's process spend most of a core on SQLite at 10,000 devices mid-rollout, and the
 * API's requests waited behind those synchronous writes; one commit per short window (or per
 * `maxMessages`) costs a fraction, and between batches the event loop serves I/O.
 *
 * Order: batches are written one after the other in arrival order, and the messages inside a batch in
 * arrival order, so a device's status and report land as the broker delivered them. Bus updates are
 * emitted after the commit, so whoever reacts reads what was announced.
 *
 * Crash safety: a kill -9 loses the batch not yet committed, at most `windowMs` of messages (telemetry:
 * `telemetryMs`). status, reported and desired are retained (docs/protocol.md): the broker hands them
 * again at the next start, which stores them and settles the rollout devices a report finishes. progress,
 * events and telemetry are live and not re-sent to the service (it subscribes at QoS 0, as every
 * message in flight at a crash was lost before batching too): a lost `desired-rejected` event leaves that
 * device `sent` until its rollout's timeout, and a lost progress only an intermediate phase.
 */
export class IngestWriter {
  private queue: Promise<void> = Promise.resolve();
  private pending: Array<{ readonly change: FleetChange; readonly wasOnline: boolean | undefined }> = [];
  private pendingTimer: NodeJS.Timeout | undefined;
  /** A writePending is in the queue already: a burst queues one, not one per message. */
  private writeQueued = false;
  private telemetry: TelemetrySample[] = [];
  private telemetryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: FleetStore,
    private readonly view: FleetView,
    private readonly bus: FleetBus,
    private readonly onError: (err: unknown) => void,
    private readonly batching: IngestBatching = DEFAULT_BATCHING,
  ) {}

  /** Folds a delivered change into the view and queues its write. */
  add(c: FleetChange): void {
    const wasOnline = this.view.devices.get(c.device)?.online;
    const now = Date.now();
    this.view.apply(c, now);
    if (c.kind === 'result') return; // command results are for whoever waits on them (api-devices.ts)
    if (c.kind === 'telemetry') {
      const time = Date.parse(c.telemetry.time);
      this.telemetry.push({ device: c.device, ...c.telemetry, time: Number.isFinite(time) ? time : now });
      this.telemetryTimer ??= setTimeout(() => this.enqueue(() => this.writeTelemetry()), this.batching.telemetryMs);
      return; // the device update is announced when the batch is stored
    }
    this.pending.push({ change: c, wasOnline });
    if (this.pending.length >= this.batching.maxMessages) this.queueWrite();
    else this.pendingTimer ??= setTimeout(() => this.queueWrite(), this.batching.windowMs);
  }

  private queueWrite(): void {
    if (this.writeQueued) return;
    this.writeQueued = true;
    this.enqueue(() => this.writePending());
  }

  /** Resolves when everything added so far is stored (or has failed, reported to onError). */
  async drain(): Promise<void> {
    this.queueWrite();
    this.enqueue(() => this.writeTelemetry());
    await this.queue;
  }

  /** Writes what is queued, and no more timers fire after. */
  async stop(): Promise<void> {
    await this.drain();
    clearTimeout(this.pendingTimer);
    clearTimeout(this.telemetryTimer);
  }

  private enqueue(fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch(this.onError);
  }

  /** Writes everything received by now, a transaction per `maxMessages`, serving I/O between them. */
  private async writePending(): Promise<void> {
    clearTimeout(this.pendingTimer);
    this.pendingTimer = undefined;
    this.writeQueued = false;
    // What arrives meanwhile has its own timer or queued write: this one ends, so drain() ends too.
    for (let left = this.pending.length; left > 0; ) {
      const batch = this.pending.splice(0, Math.min(left, this.batching.maxMessages));
      left -= batch.length;
      let updates: FleetUpdate[] = [];
      try {
        await this.commit(async (w) => {
          updates = [];
          const writes = new BatchWrites(w);
          await writes.prefetch([...new Set(batch.map((b) => b.change.device))]);
          for (const { change, wasOnline } of batch) await this.persist(writes, change, wasOnline, updates);
          const { events, settled } = await writes.flush();
          // Announced after the devices: an event or a settle is read with its device's record stored.
          for (const event of events) updates.push({ type: 'event', event });
          for (const s of settled) updates.push({ type: 'rollout-device', rollout: s.rollout, device: s.device });
        });
        this.announce(updates);
      } catch (err) {
        this.onError(err); // this batch is lost (tried COMMIT_ATTEMPTS times); the next ones still go
      }
      await yieldToIo(); // let requests waiting on the event loop run before the next batch
    }
  }

  /** Queues the writes of one message in the batch `w`; `updates` gets what to announce that `w.flush()` does not return. */
  private async persist(w: BatchWrites, c: FleetChange, wasOnline: boolean | undefined, updates: FleetUpdate[]): Promise<void> {
    const now = Date.now();
    const d = this.view.devices.get(c.device);
    const lastSeen = d?.lastSeen !== undefined ? { lastSeen: d.lastSeen } : {};
    switch (c.kind) {
      case 'status': {
        w.upsertDevice(c.device, { online: c.status.online, status: { ...c.status }, ...lastSeen });
        // A change seen live is an event; a retained status at start is only the current state.
        if (!c.retained && wasOnline !== c.status.online) w.addEvent({ time: now, device: c.device, type: c.status.online ? 'online' : 'offline', data: { ...c.status } });
        break;
      }
      case 'reported': {
        w.upsertDevice(c.device, { reported: { ...c.reported }, ...lastSeen, ...(c.reported.status !== 'applying' && { phase: null }) });
        for (const s of await w.sentTo(c.device)) {
          const outcome = reportOutcome(appOutcome, s.revision, c.reported);
          if (outcome === undefined) continue;
          const error = outcome !== 'superseded' ? c.reported.error?.message : undefined;
          w.settleDevice(s.rollout, c.device, outcome, now, error);
        }
        break;
      }
      case 'desired':
        w.upsertDevice(c.device, { desiredRevision: c.revision });
        updates.push({ type: 'desired-seen', device: c.device });
        break;
      case 'progress': {
        w.upsertDevice(c.device, { phase: c.progress.phase, ...lastSeen });
        for (const s of await w.sentTo(c.device)) if (s.revision === c.progress.revision) w.setDevicePhase(s.rollout, c.device, c.progress.phase);
        break;
      }
      case 'event': {
        w.addEvent({ time: now, device: c.device, type: String(c.event.kind), data: c.event });
        // A device refuses a message nobody vouched for only here (not in reported): a rejected revision.
        if (c.event.kind === 'desired-rejected' && typeof c.event.revision === 'number') {
          const message = (c.event.error as { message?: unknown } | undefined)?.message;
          for (const s of await w.sentTo(c.device)) {
            if (s.revision !== c.event.revision) continue;
            w.settleDevice(s.rollout, c.device, 'rejected', now, typeof message === 'string' ? message : 'refused by the device');
          }
        }
        break;
      }
      default:
        return;
    }
    updates.push({ type: 'device', id: c.device });
  }

  /** Raw samples, their minutes and each device's latest sample, in one transaction. */
  private async writeTelemetry(): Promise<void> {
    clearTimeout(this.telemetryTimer);
    this.telemetryTimer = undefined;
    const batch = this.telemetry.splice(0);
    if (batch.length === 0) return;
    const last = new Map(batch.map((s) => [s.device, s]));
    await this.commit(async (w) => {
      await w.addTelemetry(batch);
      await w.upsertDevices([...last].map(([id, s]) => ({ id, patch: { telemetry: s, lastSeen: this.view.devices.get(id)?.lastSeen ?? s.time } })));
    });
    this.announce([...last.keys()].map((id) => ({ type: 'device', id })));
    await yieldToIo();
  }

  /**
   * One transaction, tried again when it fails: a rolled-back batch left nothing, so running it again
   * writes each message once. What fails here is mostly transient, and costs a whole batch: PostgreSQL
   * aborts one of two transactions that wait on each other's rows (this batch settling devices that a
   * rollout step on another instance times out, in another order), or a connection drops.
   */
  private async commit(fn: (w: DeviceWrites) => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.store.batch(fn);
        return;
      } catch (err) {
        if (attempt >= COMMIT_ATTEMPTS) throw err;
      }
    }
  }

  private announce(updates: readonly FleetUpdate[]): void {
    // A device touched by several messages of the batch is announced once.
    const devices = new Set<string>();
    for (const u of updates) {
      if (u.type === 'device') {
        if (devices.has(u.id)) continue;
        devices.add(u.id);
      }
      this.bus.emit(u);
    }
  }
}
