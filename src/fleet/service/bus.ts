import type { EventRecord } from './store.js';

/**
 * What changed, inside one service instance: the ingest and the rollout driver tell, the live stream
 * (sse.ts) and the driver listen. Ids only: listeners read what they need from the store, so a burst
 * of changes costs nothing until someone looks.
 */
export type FleetUpdate =
  | { readonly type: 'device'; readonly id: string }
  | { readonly type: 'rollout'; readonly id: string }
  | { readonly type: 'rollout-device'; readonly rollout: string; readonly device: string }
  | { readonly type: 'event'; readonly event: EventRecord }
  /** A desired state was published live by some instance (sharing the database): rollouts are moving. */
  | { readonly type: 'desired-seen'; readonly device: string };

export class FleetBus {
  private readonly listeners = new Set<(u: FleetUpdate) => void>();

  /** Returns the unsubscribe function. A listener that throws does not stop the others. */
  on(fn: (u: FleetUpdate) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(u: FleetUpdate): void {
    for (const fn of this.listeners) {
      try {
        fn(u);
      } catch {
        // a listener's failure is its own (a closed stream); the change still reaches the rest
      }
    }
  }
}
