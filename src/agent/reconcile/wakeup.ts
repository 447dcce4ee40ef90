import type { ContainerEngine, ContainerEventType } from '../../runtime/engine-api.js';

/** The transitions that can change a deploy's verdict on a container. */
const WAKING: ReadonlySet<ContainerEventType> = new Set(['start', 'exit', 'remove']);

/**
 * Lets a waiting loop sleep until one of some containers starts, exits or is removed (the engine's
 * events), or until its own deadline (the next healthcheck, the end of a window), instead of polling.
 * An event that arrives while the loop is busy (running a check) is remembered, so the next `until`
 * returns at once and the loop looks again.
 *
 * Contract: subscribe (construct) before reading the containers' state; `close` when done (idempotent).
 */
export class ContainerWakeup {
  private pending = false;
  private wake: (() => void) | undefined;
  private readonly unsubscribe: () => void;

  constructor(engine: Pick<ContainerEngine, 'subscribe'>, containerIds: readonly string[]) {
    const ids = new Set(containerIds);
    this.unsubscribe = engine.subscribe((e) => {
      if (!ids.has(e.id) || !WAKING.has(e.type)) return;
      this.pending = true;
      this.wake?.();
    });
  }

  /** Resolves at `deadline` (epoch ms; Infinity: only on an event) or on an event; rejects when `signal` aborts. */
  until(deadline: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const settle = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.wake = undefined;
      };
      const onAbort = (): void => {
        settle();
        reject(signal.reason);
      };
      this.wake = () => {
        settle();
        this.pending = false;
        resolve();
      };
      // setTimeout's longest delay is 2^31-1 ms; a farther deadline just wakes the loop early once.
      const timer = Number.isFinite(deadline) ? setTimeout(this.wake, Math.min(Math.max(0, deadline - Date.now()), 2 ** 31 - 1)) : undefined;
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.wake = undefined;
    this.unsubscribe();
  }
}
