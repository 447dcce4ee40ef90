import type { Inventory } from '../inventory.js';
import type { FleetView } from '../view.js';
import { boardProfile } from './present.js';

/**
 * GET /api/v1/device-filters: what the fleet table's filter menus offer (every group, `key=value` label
 * and board profile in the fleet) and how many devices there are and are online. The dashboard pages the
 * device list (GET /api/v1/devices?limit=), so it can no longer find these in the whole list; here they
 * come from the fleet file and the instance's in-memory FleetView (the retained state of every device,
 * kept for planning revisions), so answering reads no database row.
 */

export interface FilterChoices {
  readonly groups: string[];
  readonly labels: string[];
  readonly profiles: string[];
}

/** What a device contributes to the menus. */
export interface FilterFacets {
  readonly groups: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly profile: string | null;
}

/** The distinct groups, `key=value` labels and profiles, each sorted. */
export function filterChoices(devices: Iterable<FilterFacets>): FilterChoices {
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

export function fleetFilters(view: FleetView, inventory: Inventory): FilterChoices & { readonly total: number; readonly online: number } {
  const ids = inventory.ids(); // the fleet file's and every device the broker knows of, as GET /devices lists them
  let online = 0;
  const facets: FilterFacets[] = [];
  for (const id of ids) {
    const d = view.devices.get(id);
    if (d?.online) online++;
    facets.push({ groups: inventory.groupsOf(id), labels: inventory.labelsOf(id), profile: boardProfile(d?.reported as Readonly<Record<string, unknown>> | undefined) });
  }
  return { ...filterChoices(facets), total: ids.length, online };
}
