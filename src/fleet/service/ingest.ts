import type { FleetLink } from '../link.js';
import type { FleetView } from '../view.js';
import type { FleetBus } from './bus.js';
import { traced } from './slice-trace.js';
import { DEFAULT_BATCHING, IngestWriter, type IngestBatching } from './ingest-writer.js';
import type { FleetStore } from './store.js';

/**
 * Device messages → the store. Every instance subscribes to the retained kinds (status, reported,
 * desired) directly: each keeps the whole fleet's current state in its FleetView for planning
 * revisions, and writing the same last value twice is harmless. The live kinds (progress, events,
 * telemetry) go through the MQTT 5 shared subscription `$share/<group>/…`, so with several instances
 * each message is stored by exactly one of them. A report settles the rollout devices it finishes,
 * whichever instance sent them (store.settleDevice is a compare-and-set on `sent`).
 *
 * The writes themselves, batched a transaction per short window, are IngestWriter's (ingest-writer.ts).
 */
export class Ingest {
  private readonly writer: IngestWriter;
  private unsubscribe: (() => void) | undefined;

  constructor(
    store: FleetStore,
    private readonly link: FleetLink,
    view: FleetView,
    bus: FleetBus,
    onError: (err: unknown) => void,
    batching: IngestBatching = DEFAULT_BATCHING,
  ) {
    this.writer = new IngestWriter(store, view, bus, onError, batching);
  }

  /** Subscribes and waits for the retained state of every device to be stored. */
  async start(): Promise<void> {
    this.unsubscribe = this.link.onChange((c) => traced('ingest add', () => this.writer.add(c)));
    await this.link.subscribe(['status', 'reported', 'desired']);
    await this.link.sync();
    await this.link.subscribe(['progress', 'events', 'telemetry'], { shared: true, results: true });
    await this.drain();
  }

  /** Resolves when everything received so far is stored. */
  drain(): Promise<void> {
    return this.writer.drain();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.writer.stop();
  }
}
