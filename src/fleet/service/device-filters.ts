import type { Inventory } from '../inventory.js';
import type { DeviceView, FleetChange, FleetView } from '../view.js';
import { boardProfile } from './present.js';

/**
 * GET /api/v1/device-filters: what the fleet table's filter menus offer (every group, `key=value` label
 * and board profile in the fleet) and how many devices there are and are online. The dashboard pages the
 * device list (GET /api/v1/devices?limit=), so it can no longer find these in the whole list.
 *
 * Why kept, not computed per call: building every device's groups and labels for each call took 20–35 ms
 * of the event loop at 10,000 devices (issue 21's trace, scripts/bench/fleet-10k.mjs), and the dashboard
 * asks on every load. What a device contributes depends only on the fleet file (fixed for the inventory's
 * life), the board it reports and whether it is online, so FilterFacets counts each menu entry over the
 * devices and adjusts the counts when the view changes one of those (FleetView.onApplied): an answer is
 * then O(entries), and a changed board is in the very next answer.
 */

export interface FilterChoices {
  readonly groups: readonly string[];
  readonly labels: readonly string[];
  readonly profiles: readonly string[];
}

export type FleetFilters = FilterChoices & { readonly total: number; readonly online: number };

type Board = ReturnType<Inventory['boardOf']>;

/** How many devices offer each entry of one menu; the sorted entries are kept until one appears or goes. */
class EntryCounts {
  private readonly counts = new Map<string, number>();
  private sorted: readonly string[] | undefined;

  /** Counts `entries` once more (by 1) or once less (by -1); each entry must be distinct. */
  add(entries: Iterable<string>, by: 1 | -1): void {
    for (const e of entries) {
      const n = (this.counts.get(e) ?? 0) + by;
      if (n > 0) this.counts.set(e, n);
      else this.counts.delete(e);
      if (n === 0 || (n === 1 && by === 1)) this.sorted = undefined;
    }
  }

  /** The entries some device offers, sorted; the same array until that set changes (callers must not change it). */
  entries(): readonly string[] {
    return (this.sorted ??= [...this.counts.keys()].sort());
  }
}

/** The state a device was last counted with. */
interface Counted {
  board: Board;
  online: boolean;
}

/**
 * The filter menus of the fleet: the inventory's devices (the fleet file's and every device the view has
 * heard of), each counted with its groups, labels and profile.
 *
 * Contract: fleetFilters() answers what the inventory and view say now: the same as building the menus
 * from inventory.groupsOf/labelsOf and the reported profile of every id in inventory.ids(), and counting
 * the view's online devices among them, provided every device reaches the view through FleetView.apply
 * (as the service's ingest does). Counting is O(1) per message that does not change a board or online
 * state; close() stops following the view.
 */
export class FilterFacets {
  private readonly devices = new Map<string, Counted>();
  private readonly groups = new EntryCounts();
  private readonly labels = new EntryCounts();
  private readonly profiles = new EntryCounts();
  private online = 0;
  private readonly unsubscribe: () => void;

  constructor(private readonly inventory: Inventory, view: FleetView) {
    for (const id of inventory.ids()) {
      const d = view.devices.get(id);
      this.count(id, { board: inventory.boardOf(id), online: d?.online === true }, 1);
    }
    this.unsubscribe = view.onApplied((c, d) => this.applied(c, d));
  }

  fleetFilters(): FleetFilters {
    return { groups: this.groups.entries(), labels: this.labels.entries(), profiles: this.profiles.entries(), total: this.devices.size, online: this.online };
  }

  close(): void {
    this.unsubscribe();
  }

  private applied(c: FleetChange, d: DeviceView): void {
    const was = this.devices.get(d.id);
    if (was === undefined) {
      this.count(d.id, { board: this.inventory.boardOf(d.id), online: d.online === true }, 1);
      return;
    }
    // Only a status (online) or a report (board) changes what a known device offers: the rest is most
    // of the traffic (telemetry, progress) and costs this one comparison.
    if (c.kind !== 'status' && c.kind !== 'reported') return;
    const board = this.inventory.boardOf(d.id);
    const online = d.online === true;
    if (online === was.online && board?.profile === was.board?.profile && board?.model === was.board?.model && (board === null) === (was.board === null)) return;
    this.count(d.id, was, -1);
    this.count(d.id, { board, online }, 1);
  }

  /** Adds (1) or takes away (-1) what device `id` offers with `state`. */
  private count(id: string, state: Counted, by: 1 | -1): void {
    this.groups.add(this.inventory.groupsOf(id, state.board), by);
    this.labels.add(Object.entries(this.inventory.labelsOf(id, state.board)).map(([k, v]) => `${k}=${v}`), by);
    const profile = boardProfile(state.board === null ? undefined : { board: state.board });
    if (profile !== null) this.profiles.add([profile], by);
    if (state.online) this.online += by;
    if (by === 1) this.devices.set(id, state);
    else this.devices.delete(id);
  }
}
