import type { ContainerEngine } from '../runtime/engine-api.js';
import type { ContainerRecord } from '../runtime/records.js';

/**
 * The engine's container list for a loop that runs on a timer (healthchecks, PSI samples, telemetry):
 * read once, and again only after the engine reported an event, so an idle tick lists nothing. Until
 * `follow` is called (or after the returned stop function), every `list()` reads the engine afresh.
 */
export class LiveContainers {
  private cached: ContainerRecord[] | undefined;
  private following = false;
  private changes = 0;

  constructor(private readonly engine: Pick<ContainerEngine, 'list' | 'subscribe'>) {}

  /** Starts following the engine's events; returns the function that stops it. */
  follow(): () => void {
    const unsubscribe = this.engine.subscribe(() => {
      this.cached = undefined;
      this.changes++;
    });
    this.following = true;
    this.cached = undefined;
    return () => {
      unsubscribe();
      this.following = false;
      this.cached = undefined;
    };
  }

  list(): ContainerRecord[] {
    if (!this.following) return this.engine.list();
    return (this.cached ??= this.engine.list());
  }

  /** Grows with every event the engine reported: a caller compares it with the value it last saw. */
  get generation(): number {
    return this.changes;
  }
}
