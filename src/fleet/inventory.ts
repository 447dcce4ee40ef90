import { BerthError } from '../errors.js';
import { isValidDeviceId } from '../protocol/topics.js';
import type { ReportedState } from '../protocol/types.js';
import type { FleetFile } from './fleet-file.js';
import { mergeSorted } from './sorted-ids.js';
import type { FleetView } from './view.js';

type Board = ReportedState['board'];

/** Which devices a command is for: exactly one of the three. */
export interface Selection {
  readonly devices?: readonly string[];
  readonly group?: string;
  readonly all?: boolean;
}

/**
 * The fleet's devices: those the fleet file lists plus those the broker knows of (a retained status,
 * reported or desired). Groups come from the file and from what devices report: `profile:<board
 * profile>` and `model:<model>`; labels likewise (`profile`, `model` from the report, file labels win).
 */
export class Inventory {
  /** Each fleet-file device's own groups, then those listing it, in the file's order (the file is fixed for the inventory's life). */
  private readonly fileGroups = new Map<string, string[]>();
  /** The fleet file's device ids, sorted. */
  private readonly fileIds: readonly string[];
  private merged: { readonly viewSize: number; readonly ids: readonly string[] } | undefined;

  constructor(private readonly file: FleetFile, private readonly view: FleetView) {
    const add = (id: string, groups: readonly string[]): void => {
      const own = this.fileGroups.get(id) ?? [];
      for (const g of groups) if (!own.includes(g)) own.push(g);
      this.fileGroups.set(id, own);
    };
    for (const [id, d] of Object.entries(file.devices ?? {})) add(id, d?.groups ?? []);
    for (const [g, members] of Object.entries(file.groups ?? {})) for (const id of members) add(id, [g]);
    this.fileIds = [...this.fileGroups.keys()].sort();
  }

  /**
   * The fleet's ids, sorted. The same array until a device appears (the view's ids are kept sorted as
   * they arrive, and merged with the file's only when they changed): callers must not change it.
   */
  ids(): readonly string[] {
    const view = this.view.ids;
    if (this.merged?.viewSize !== view.size) this.merged = { viewSize: view.size, ids: mergeSorted(this.fileIds, view.all()) };
    return this.merged.ids;
  }

  /** Whether the fleet file or the broker knows of the device. */
  has(id: string): boolean {
    return this.fileGroups.has(id) || this.view.devices.has(id);
  }

  /** The board a device reports, null when none: what its derived groups and labels come from. */
  boardOf(id: string): Board | null {
    return this.view.devices.get(id)?.reported?.board ?? null;
  }

  /**
   * The device's groups. `board` stands in for the one it reports now (null: none), for whoever needs the
   * groups a device had with a board it reported earlier (the filter menus' counts, device-filters.ts).
   */
  groupsOf(id: string, board: Board | null = this.boardOf(id)): string[] {
    const reported = board ? [`profile:${board.profile}`, `model:${board.model}`] : [];
    return [...new Set([...(this.fileGroups.get(id) ?? []), ...reported])];
  }

  /** groupsOf(id).includes(group), without building the list (a filter asks it of every device). */
  inGroup(id: string, group: string): boolean {
    if (this.fileGroups.get(id)?.includes(group)) return true;
    const board = this.boardOf(id);
    if (board === null) return false;
    return group.startsWith('profile:') ? group.slice(8) === board.profile : group.startsWith('model:') && group.slice(6) === board.model;
  }

  /** The device's labels: its board's `profile` and `model`, then the fleet file's (which win); `board` as for groupsOf. */
  labelsOf(id: string, board: Board | null = this.boardOf(id)): Record<string, string> {
    return { ...(board && { profile: board.profile, model: board.model }), ...this.file.devices?.[id]?.labels };
  }

  /** The selected device ids, sorted; `usage` for a bad selection, `notFound` for an empty group. */
  select(sel: Selection): string[] {
    const given = [sel.devices !== undefined && sel.devices.length > 0, sel.group !== undefined, sel.all === true].filter(Boolean).length;
    if (given !== 1) throw new BerthError('usage', 'choose the devices with exactly one of --device ID…, --group NAME or --all');
    if (sel.devices && sel.devices.length > 0) {
      const bad = sel.devices.filter((d) => !isValidDeviceId(d));
      if (bad.length > 0) throw new BerthError('usage', `invalid device id ${bad.map((b) => `"${b}"`).join(', ')}: use 1–128 of [A-Za-z0-9_.:-], starting with a letter or digit`);
      return [...new Set(sel.devices)].sort();
    }
    const ids = this.ids();
    if (sel.all) {
      if (ids.length === 0) throw new BerthError('notFound', 'no devices: none in the fleet file and none known to the broker');
      return [...ids];
    }
    const members = ids.filter((id) => this.inGroup(id, sel.group!));
    if (members.length === 0) throw new BerthError('notFound', `group "${sel.group}" has no devices`, { hint: 'groups come from the fleet file and from reports (profile:NAME, model:NAME); see berth fleet status' });
    return members;
  }
}
