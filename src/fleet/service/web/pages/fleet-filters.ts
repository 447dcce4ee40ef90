// The fleet table's filters and paging: pure (no DOM), so unit tests check them.
import type { DevicePage, DeviceSummary, FleetFilters } from '../types.js';

/** The filters the fleet table offers, each one the API's query parameter of the same name. */
export interface Filters {
  readonly group: string;
  readonly label: string;
  readonly profile: string;
}

export const filtersOf = (q: URLSearchParams): Filters => ({ group: q.get('group') ?? '', label: q.get('label') ?? '', profile: q.get('profile') ?? '' });
export const anyFilter = (f: Filters): boolean => Boolean(f.group || f.label || f.profile);

/** Whether a device has a group, label or profile the menus do not offer yet (they are then re-read). */
export function offersNew(menus: FleetFilters, d: DeviceSummary): boolean {
  return d.groups.some((g) => !menus.groups.includes(g))
    || Object.entries(d.labels).some(([k, v]) => !menus.labels.includes(`${k}=${v}`))
    || (d.profile != null && d.profile !== '' && !menus.profiles.includes(d.profile));
}

/**
 * Whether a device id sorts into the page shown (ids above `after`, up to the page's last when another
 * page follows): a device heard of for the first time there may belong on it, one elsewhere may not.
 */
export function inPage(page: DevicePage, after: string, id: string): boolean {
  return id > after && (page.next === null || id <= page.next);
}
