// The fleet table's filter menus: pure (no DOM), so unit tests check them.
import type { DeviceSummary } from '../types.js';

/** The filters the fleet table offers, each one the API's query parameter of the same name. */
export interface Filters {
  readonly group: string;
  readonly label: string;
  readonly profile: string;
}

export const filtersOf = (q: URLSearchParams): Filters => ({ group: q.get('group') ?? '', label: q.get('label') ?? '', profile: q.get('profile') ?? '' });
export const anyFilter = (f: Filters): boolean => Boolean(f.group || f.label || f.profile);

/** The distinct groups, `key=value` labels and profiles in the fleet, sorted. */
export function menus(devices: readonly DeviceSummary[]): { groups: string[]; labels: string[]; profiles: string[] } {
  const groups = new Set<string>();
  const labels = new Set<string>();
  const profiles = new Set<string>();
  for (const d of devices) {
    for (const g of d.groups) groups.add(g);
    for (const [k, v] of Object.entries(d.labels)) labels.add(`${k}=${v}`);
    if (d.profile) profiles.add(d.profile);
  }
  const sorted = (s: Set<string>): string[] => [...s].sort();
  return { groups: sorted(groups), labels: sorted(labels), profiles: sorted(profiles) };
}
