// Log lines of a followed service (log-stream.ts): pure, so unit tests check the merge.
import type { LogFollowMessage } from '../../protocol/types.js';

export type LogLine = LogFollowMessage['lines'][number];

/** How many lines a merge keeps. */
const KEEP = 2000;

/** `old` then the lines of `got` after the last one `old` ends with (an answer overlaps the previous). */
export function mergeLogLines(old: readonly LogLine[], got: readonly LogLine[]): LogLine[] {
  const last = old[old.length - 1];
  if (!last) return [...got];
  const same = (a: LogLine, b: LogLine): boolean => a.time === b.time && a.stream === b.stream && a.text === b.text;
  const at = findLastIndex(got, (l) => same(l, last));
  const fresh = at >= 0 ? got.slice(at + 1) : got.filter((l) => l.time > last.time);
  return [...old, ...fresh].slice(-KEEP);
}

function findLastIndex<T>(xs: readonly T[], p: (x: T) => boolean): number {
  for (let i = xs.length - 1; i >= 0; i--) if (p(xs[i]!)) return i;
  return -1;
}
