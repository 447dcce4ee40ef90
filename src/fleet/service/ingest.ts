import { appOutcome, reportOutcome } from '../deploy.js';
import type { FleetLink } from '../link.js';
import type { FleetChange, FleetView } from '../view.js';
import type { FleetBus } from './bus.js';
import type { FleetStore, TelemetrySample } from './store.js';

/**
 * Device messages → the store. Every instance subscribes to the retained kinds (status, reported,
 * desired) directly: each keeps the whole fleet's current state in its FleetView for planning
 * revisions, and writing the same last value twice is harmless. The live kinds (progress, events,
 * telemetry) go through the MQTT 5 shared subscription `$share/<group>/…`, so with several instances
 * each message is stored by exactly one of them. A report settles the rollout devices it finishes,
 * whichever instance sent them (store.settleDevice is a compare-and-set on `sent`).
 *
 * Writes go through one queue in arrival order, so a device's status and report land in the order the
 * broker delivered them; telemetry is batched (one transaction a second) since it is most of the traffic.
 */
export class Ingest {
  private queue: Promise<void> = Promise.resolve();
  private telemetry: TelemetrySample[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: FleetStore,
    private readonly link: FleetLink,
    private readonly view: FleetView,
    private readonly bus: FleetBus,
    private readonly onError: (err: unknown) => void,
    private readonly telemetryFlushMs = 1000,
  ) {}

  /** Subscribes and waits for the retained state of every device to be stored. */
  async start(): Promise<void> {
    this.unsubscribe = this.link.onChange((c) => {
      const before = this.view.devices.get(c.device)?.online;
      this.view.apply(c, Date.now());
      this.enqueue(() => this.persist(c, before));
    });
    await this.link.subscribe(['status', 'reported', 'desired']);
    await this.link.sync();
    await this.link.subscribe(['progress', 'events', 'telemetry'], { shared: true, results: true });
    await this.drain();
  }

  /** Resolves when everything received so far is stored. */
  async drain(): Promise<void> {
    await this.flushTelemetry();
    await this.queue;
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.drain();
  }

  private enqueue(fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch(this.onError);
  }

  private async persist(c: FleetChange, wasOnline: boolean | undefined): Promise<void> {
    const now = Date.now();
    const d = this.view.devices.get(c.device);
    switch (c.kind) {
      case 'status': {
        await this.store.upsertDevice(c.device, { online: c.status.online, status: { ...c.status }, ...(d?.lastSeen !== undefined && { lastSeen: d.lastSeen }) });
        // A change seen live is an event; a retained status at start is only the current state.
        if (!c.retained && wasOnline !== c.status.online) await this.event(c.device, c.status.online ? 'online' : 'offline', { ...c.status }, now);
        break;
      }
      case 'reported': {
        await this.store.upsertDevice(c.device, { reported: { ...c.reported }, ...(d?.lastSeen !== undefined && { lastSeen: d.lastSeen }), ...(c.reported.status !== 'applying' && { phase: null }) });
        for (const s of await this.store.sentTo(c.device)) {
          const outcome = reportOutcome(appOutcome, s.revision, c.reported);
          if (outcome === undefined) continue;
          const error = outcome !== 'superseded' ? c.reported.error?.message : undefined;
          if (await this.store.settleDevice(s.rollout, c.device, outcome, now, error)) this.bus.emit({ type: 'rollout-device', rollout: s.rollout, device: c.device });
        }
        break;
      }
      case 'desired':
        await this.store.upsertDevice(c.device, { desiredRevision: c.revision });
        this.bus.emit({ type: 'desired-seen', device: c.device });
        break;
      case 'progress': {
        await this.store.upsertDevice(c.device, { phase: c.progress.phase, ...(d?.lastSeen !== undefined && { lastSeen: d.lastSeen }) });
        for (const s of await this.store.sentTo(c.device)) if (s.revision === c.progress.revision) await this.store.setDevicePhase(s.rollout, c.device, c.progress.phase);
        break;
      }
      case 'telemetry': {
        const time = Date.parse(c.telemetry.time);
        this.telemetry.push({ device: c.device, ...c.telemetry, time: Number.isFinite(time) ? time : now });
        this.flushTimer ??= setTimeout(() => this.enqueue(() => this.flushTelemetry()), this.telemetryFlushMs);
        return; // the device update is announced when the batch is stored
      }
      case 'event': {
        await this.event(c.device, String(c.event.kind), c.event, now);
        // A device refuses a message nobody vouched for only here (not in reported): a rejected revision.
        if (c.event.kind === 'desired-rejected' && typeof c.event.revision === 'number') {
          const message = (c.event.error as { message?: unknown } | undefined)?.message;
          for (const s of await this.store.sentTo(c.device)) {
            if (s.revision !== c.event.revision) continue;
            if (await this.store.settleDevice(s.rollout, c.device, 'rejected', now, typeof message === 'string' ? message : 'refused by the device')) {
              this.bus.emit({ type: 'rollout-device', rollout: s.rollout, device: c.device });
            }
          }
        }
        break;
      }
      default:
        return; // command results are for whoever waits on them (api-devices.ts)
    }
    this.bus.emit({ type: 'device', id: c.device });
  }

  private async event(device: string, type: string, data: Record<string, unknown>, time: number): Promise<void> {
    this.bus.emit({ type: 'event', event: await this.store.addEvent({ time, device, type, data }) });
  }

  private async flushTelemetry(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const batch = this.telemetry.splice(0);
    if (batch.length === 0) return;
    await this.store.addTelemetry(batch);
    const last = new Map(batch.map((s) => [s.device, s]));
    for (const [device, s] of last) {
      await this.store.upsertDevice(device, { telemetry: s, lastSeen: this.view.devices.get(device)?.lastSeen ?? s.time });
      this.bus.emit({ type: 'device', id: device });
    }
  }
}
