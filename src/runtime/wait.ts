import type { ContainerEngine } from './engine-api.js';
import type { ContainerRecord } from './records.js';

/**
 * docker wait: resolves with the container's record once it is not running (at once for a created or
 * ended one), woken by the engine's `exit`/`remove` events rather than by polling. A container removed
 * while waited on resolves with its last record. `signal` aborts: undefined.
 */
export function waitNotRunning(engine: ContainerEngine, nameOrId: string, signal?: AbortSignal): Promise<ContainerRecord | undefined> {
  const first = engine.find(nameOrId);
  return new Promise((resolve) => {
    let last = first;
    const done = (r: ContainerRecord | undefined): void => {
      unsubscribe();
      signal?.removeEventListener('abort', abort);
      resolve(r);
    };
    const abort = (): void => done(undefined);
    // Subscribed before the second look: an exit between the two is either seen there or delivered.
    const unsubscribe = engine.subscribe((e) => {
      if (e.id !== first.id) return;
      if (e.type === 'remove') done(last);
      else if (e.type === 'exit') done((last = engine.find(first.id)));
    });
    signal?.addEventListener('abort', abort, { once: true });
    last = engine.find(first.id);
    if (last.state !== 'running') done(last);
  });
}
