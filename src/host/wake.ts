/**
 * A one-slot wake-up: `wake()` resolves the pending `wait`, or, with nobody waiting, makes the next
 * `wait` return at once (so a change between two waits is never lost). For loops that sleep until
 * something happened or a deadline passed: the supervisor, the health monitor, DirWatch.
 */
export class Wake {
  private pending: (() => void) | undefined;
  private woken = false;

  wake(): void {
    if (this.pending) this.pending();
    else this.woken = true;
  }

  /** Resolves on `wake()`, after `timeoutMs` (none: no deadline), or at once when `signal` is aborted. */
  wait(timeoutMs?: number, signal?: AbortSignal): Promise<void> {
    if (this.woken || signal?.aborted) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.pending = undefined;
        resolve();
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, Math.max(0, timeoutMs));
      signal?.addEventListener('abort', done, { once: true });
      this.pending = done;
    });
  }
}
