/**
 * Device ids kept sorted as they arrive, so a reader gets the sorted list without sorting the fleet on
 * every call (issue 21: at 10,000 devices the fleet service sorted every id for each page it served,
 * ~9 s of CPU over a benchmark run). Ids are only ever added: a device heard of stays known.
 *
 * Contract: `all()` is every id added, distinct, in JavaScript string order (UTF-16 code units, as
 * `<` and the default sort compare). Adding is O(1); the ids added since the last `all()` are sorted
 * and merged in then, O(n + k log k), so a burst of new devices costs one merge, not one per device.
 * The array `all()` returns is the same object until an id is added: callers must not change it, and
 * may keep results computed from it keyed by its identity.
 */
export class SortedIds {
  private sorted: readonly string[] = [];
  private readonly known = new Set<string>();
  private pending: string[] = [];

  add(id: string): void {
    if (this.known.has(id)) return;
    this.known.add(id);
    this.pending.push(id);
  }

  has(id: string): boolean {
    return this.known.has(id);
  }

  get size(): number {
    return this.known.size;
  }

  all(): readonly string[] {
    if (this.pending.length > 0) {
      this.sorted = mergeSorted(this.sorted, this.pending.sort());
      this.pending = [];
    }
    return this.sorted;
  }
}

/** The distinct union of two sorted id lists (each may hold an id once), sorted. */
export function mergeSorted(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x < y) out.push(x), i++;
    else if (y < x) out.push(y), j++;
    else out.push(x), i++, j++;
  }
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}

/** The index of the first id in `sorted` above `after` (sorted.length when none): where a page starts. */
export function firstAfter(sorted: readonly string[], after: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
