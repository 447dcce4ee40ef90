import type { FleetSigningKey } from '../../protocol/signing.js';
import { DeviceTopics } from '../../protocol/topics.js';
import type { FleetLink } from '../link.js';
import type { FleetView } from '../view.js';
import type { FleetBus } from './bus.js';
import { tracedAsync } from './slice-trace.js';
import { decideStep, nextStepAt } from './step.js';
import type { FleetStore, RolloutRecord } from './store.js';

/**
 * Moves the stored rollouts forward: each step (step.ts, in the store's transaction) records the
 * devices due as `sent` BEFORE their desired state is published, so a crash can never lead to a
 * second send of a new revision; the signed desired state is retained and carries the row's revision,
 * and a device ignores a revision it already has, so the one repair this needs, publishing a row that
 * was recorded but whose publish was lost with the process, is harmless (see republishLost).
 *
 * Steps run when a device of a rollout finishes (a bus update), when a device comes due or times out,
 * and, with other instances on the database, when one of them changed a rollout (the store's
 * watchRollouts: PostgreSQL LISTEN/NOTIFY), with a slow poll every `maxIdleMs` only as a safety net
 * for a notification lost while the listening connection reconnected.
 */
/**
 * Devices recorded sent per step at most: keeps each transaction (and the rollout row's lock) short with
 * thousands of devices, and lets other instances claim the next batches meanwhile.
 */
const MAX_SEND_PER_STEP = 100;
/** With other instances on the database: how often to look anyway, should a notification be lost. */
const SAFETY_POLL_MS = 30_000;

export class RolloutDriver {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** A pass is due at the next setImmediate (kick). */
  private soon: NodeJS.Immediate | undefined;
  private again = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private unwatch: (() => Promise<void>) | undefined;
  /** When each unfinished rollout was last looked at for lost publishes (republishLost). */
  private readonly lostChecked = new Map<string, number>();
  /** Publishes under way (stop waits for them). */
  private readonly publishing = new Set<Promise<void>>();

  constructor(
    private readonly deps: {
      readonly store: FleetStore;
      readonly link: FleetLink;
      readonly view: FleetView;
      readonly bus: FleetBus;
      readonly signer: FleetSigningKey;
      /** This process's name in `sent_by`. */
      readonly instance: string;
      readonly onError: (err: unknown) => void;
      /**
       * The only instance on its database (SQLite): nothing changes the rows behind its back, so it
       * wakes only when a device comes due or times out, and a `sent` row it did not record itself is
       * from a process that died. Otherwise it also wakes when the store says another instance changed
       * a rollout, and every `maxIdleMs` (default 30 s) as a safety net, and a row is taken as lost
       * when it was sent `lostAfterMs` ago and the broker still does not hold it.
       */
      readonly singleInstance: boolean;
      readonly maxIdleMs?: number;
      readonly lostAfterMs?: number;
    },
  ) {}

  /** Starts stepping; resolves once other instances' changes are listened for. */
  async start(): Promise<void> {
    if (!this.deps.singleInstance) {
      const unwatch = await this.deps.store.watchRollouts(() => this.kick());
      this.unwatch = unwatch;
    }
    this.unsubscribe = this.deps.bus.on((u) => {
      // A device finished (settled by the ingest), or a rollout was created, resumed or cancelled: the
      // abort rule, sending and completion may follow. (A pass that changes nothing emits nothing.)
      // A desired state published by another instance on the database says a rollout is sending:
      // joining in at once splits the work instead of waiting for the idle wake-up.
      if (u.type === 'rollout-device' || u.type === 'rollout' || u.type === 'desired-seen') this.kick();
    });
    this.kick();
  }

  /**
   * Runs a pass soon (coalescing requests that come while one runs or waits to run), never inside the
   * caller's turn of the event loop: on SQLite a pass is all synchronous calls, and its callers are bus
   * listeners run from a PUBACK's or a device message's continuation. mqtt.js handles every packet of a
   * socket read in one turn (process.nextTick between packets), so passes started from there ran back to
   * back: 31 steps (3,100 signatures, 0.7 s) in one turn at 10,000 devices (the fleet-10k bench's trace),
   * and every API call waited for them. From setImmediate, one pass a turn, with I/O served between.
   */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.soon ??= setImmediate(() => {
      this.soon = undefined;
      if (this.stopped) return;
      if (this.running) return void (this.again = true);
      this.running = this.pass()
        .catch(this.deps.onError)
        .finally(() => {
          this.running = undefined;
          if (this.again) {
            this.again = false;
            this.kick();
          }
        });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.soon) clearImmediate(this.soon);
    this.unsubscribe?.();
    await this.unwatch?.();
    await this.running;
    await Promise.all(this.publishing);
    if (this.timer) clearTimeout(this.timer);
  }

  private async pass(): Promise<void> {
    const now = Date.now();
    let wake = this.deps.singleInstance ? Infinity : now + (this.deps.maxIdleMs ?? SAFETY_POLL_MS);
    const ids = await this.deps.store.unfinishedRollouts();
    for (const id of ids) {
      const at = await tracedAsync('rollout step', () => this.step(id));
      if (at !== undefined) wake = Math.min(wake, at);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (wake !== Infinity && !this.stopped) this.timer = setTimeout(() => this.kick(), Math.max(10, Math.min(wake - Date.now(), 2_147_000_000)));
  }

  /** One step of one rollout; returns when it wants the next. */
  private async step(id: string): Promise<number | undefined> {
    const now = Date.now();
    let seen: { r: RolloutRecord; at: number | undefined; changed: boolean } | undefined;
    const sent = await this.deps.store.stepRollout(id, this.deps.instance, now, MAX_SEND_PER_STEP, (r, view) => {
      const d = decideStep(r, view, now);
      seen = { r, at: nextStepAt(r, view, d, now), changed: d.send !== undefined || d.finish !== undefined || d.dropPending === true || d.state !== undefined };
      return d;
    });
    if (!seen) return undefined;
    // Not waited for: the rows are recorded, so the next step need not wait for these PUBACKs (at 10,000
    // devices behind a busy broker that wait, not the database, set the pace); stop() waits for them.
    if (sent.length > 0) this.track(this.publish(seen.r, sent));
    await this.republishLost(seen.r, now);
    if (seen.changed) this.deps.bus.emit({ type: 'rollout', id });
    return seen.at;
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch(this.deps.onError).finally(() => this.publishing.delete(tracked));
    this.publishing.add(tracked);
  }

  /**
   * Publishes each device's signed desired state, then records the revisions the broker took in one
   * write (a write per device was a round trip each on PostgreSQL: 10,000 per rollout) and announces
   * them. A failed publish is reported (the first one) and its device left as it was.
   */
  private async publish(r: RolloutRecord, devices: ReadonlyArray<{ device: string; revision: number }>): Promise<void> {
    const template = JSON.parse(r.body) as object;
    const results = await Promise.allSettled(devices.map(async ({ device, revision }) => {
      // The signature binds the body to the device and revision: it cannot be replayed elsewhere.
      const payload = this.deps.signer.sign({ kind: 'desired', device, revision }, JSON.stringify({ revision, ...template }));
      await this.deps.link.publish(new DeviceTopics(device).topic('desired'), payload, { retain: true, qos: 1 });
    }));
    const published = devices.filter((_, i) => results[i]!.status === 'fulfilled');
    await this.deps.store.upsertDevices(published.map(({ device, revision }) => ({ id: device, patch: { desiredRevision: revision } })));
    for (const { device } of published) this.deps.bus.emit({ type: 'rollout-device', rollout: r.id, device });
    const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Rows recorded `sent` a while ago whose revision the broker's retained desired state does not
   * show: the process that recorded them died before publishing. Published now, the same revision
   * and the same signed bytes (Ed25519 is deterministic); a device that has it ignores it. Looked for
   * at most once per `lostAfterMs` per rollout (it reads every row still `sent`, thousands at once
   * in a fast rollout), and always on this process's first step of a rollout. The only instance on its
   * database looks once per rollout, at that first step: every row another process recorded was there
   * by then, and each it records itself it publishes (re-reading 10,000 rows every few seconds mid-rollout
   * was one of the stalls that API requests waited behind).
   */
  private async republishLost(r: RolloutRecord, now: number): Promise<void> {
    const lostAfter = this.deps.lostAfterMs ?? 5000;
    const last = this.lostChecked.get(r.id);
    if (last !== undefined && (this.deps.singleInstance || last > now - lostAfter)) return;
    this.lostChecked.set(r.id, now);
    if (r.finishedAt !== undefined) return void this.lostChecked.delete(r.id);
    const lost = (await this.deps.store.rolloutDevices(r.id, 'sent')).filter((d) => {
      if (this.deps.singleInstance ? d.sentBy === this.deps.instance : d.sentAt! > now - lostAfter) return false;
      return (this.deps.view.devices.get(d.device)?.desiredRevision ?? 0) < d.revision;
    });
    if (lost.length > 0) this.track(this.publish(r, lost));
  }
}
