import { mergeSorted } from '../sorted-ids.js';
import type { Inventory } from '../inventory.js';
import type { FleetStore } from './store.js';

/**
 * The ids GET /api/v1/devices lists, sorted: the inventory's (the fleet file's and every device the
 * broker knows of, kept sorted as devices appear: Inventory.ids) and those only the store held when the
 * service started (devices of earlier runs whose retained state the broker no longer has). A page is
 * then a binary search and its own rows, where it used to read and sort every id of the fleet.
 *
 * Why the store is read only once: every device this instance stores after its start is in its view
 * first (the ingest folds a message into the view before writing it; a rollout's desired state comes
 * back retained), and every instance subscribes to the retained kinds itself. The one device another
 * instance on a shared PostgreSQL could store without this one hearing of it is one that never sent a
 * retained message, only live ones; it is listed here after this instance's next start.
 */
export class ListedIds {
  private merged: { readonly from: readonly string[]; readonly ids: readonly string[] } | undefined;

  private constructor(readonly inventory: Inventory, private readonly storedOnly: readonly string[]) {}

  /** Reads the store's ids once; call after the retained state is in the view (Ingest.start). */
  static async load(store: FleetStore, inventory: Inventory): Promise<ListedIds> {
    return new ListedIds(inventory, (await store.deviceIds()).filter((id) => !inventory.has(id)).sort());
  }

  /** Every listed id, sorted; the same array until one is added (callers must not change it). */
  all(): readonly string[] {
    const ids = this.inventory.ids();
    if (this.storedOnly.length === 0) return ids;
    if (this.merged?.from !== ids) this.merged = { from: ids, ids: mergeSorted(ids, this.storedOnly) };
    return this.merged.ids;
  }
}
