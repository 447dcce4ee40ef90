import { BerthError } from '../../errors.js';

/**
 * Runs `fn` over `items` with at most `limit` at once. On the first failure the others are aborted and
 * awaited, so nothing is still writing when the error reaches the caller.
 */
export async function runPool<T>(items: readonly T[], limit: number, fn: (item: T, signal: AbortSignal) => Promise<void>, signal: AbortSignal): Promise<void> {
  const inner = new AbortController();
  const onAbort = (): void => inner.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && !inner.signal.aborted) {
      const item = items[next++]!;
      try {
        await fn(item, inner.signal);
      } catch (err) {
        firstError ??= err;
        inner.abort(err);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (firstError !== undefined) throw firstError;
  if (signal.aborted) throw new BerthError('cancelled', 'cancelled');
}
