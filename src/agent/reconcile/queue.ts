import type { App } from '../../compose/model.js';
import type { Deployer, DeployOutcome } from './deployer.js';

/**
 * One deploy at a time. A newer revision aborts the one in progress (reported superseded) and runs
 * next; an older or equal revision than the newest seen is ignored, so a re-delivered retained message
 * or a stale one from a reconnect changes nothing.
 */
export class DeployQueue {
  private running: { revision: number; abort: AbortController; done: Promise<DeployOutcome | undefined> } | undefined;
  private pending: App | undefined;
  private newestRevision = 0;

  constructor(private readonly deployer: Deployer, private readonly onOutcome?: (o: DeployOutcome) => void) {}

  /** The newest revision accepted so far (start it from the store on agent start). */
  seen(revision: number): void {
    this.newestRevision = Math.max(this.newestRevision, revision);
  }

  /** The newest revision accepted so far (0: none). */
  newest(): number {
    return this.newestRevision;
  }

  /** Queues `desired` (normalized once, on receipt); returns false when it is not newer than what was already accepted. */
  submit(desired: App, force = false): boolean {
    if (!force && desired.revision <= this.newestRevision) return false;
    this.newestRevision = Math.max(this.newestRevision, desired.revision);
    this.pending = desired;
    if (this.running) this.running.abort.abort();
    else void this.next();
    return true;
  }

  /** Whether `revision` is being applied or waits to be. */
  has(revision: number): boolean {
    return this.running?.revision === revision || this.pending?.revision === revision;
  }

  /** Whether a deploy runs or waits. */
  busy(): boolean {
    return this.running !== undefined || this.pending !== undefined;
  }

  /** Resolves when nothing is running or queued. */
  async idle(): Promise<void> {
    while (this.running) await this.running.done;
  }

  cancel(): void {
    this.pending = undefined;
    this.running?.abort.abort();
  }

  private async next(): Promise<void> {
    const desired = this.pending;
    if (!desired) return;
    this.pending = undefined;
    const abort = new AbortController();
    const done = this.deployer.apply(desired, abort.signal).then(
      (o) => {
        this.onOutcome?.(o);
        return o;
      },
      () => undefined,
    );
    this.running = { revision: desired.revision, abort, done };
    await done;
    this.running = undefined;
    await this.next();
  }
}
