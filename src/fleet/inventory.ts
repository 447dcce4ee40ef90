import { BerthError } from '../errors.js';
import { isValidDeviceId } from '../protocol/topics.js';
import type { FleetFile } from './fleet-file.js';
import type { FleetView } from './view.js';

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
  constructor(private readonly file: FleetFile, private readonly view: FleetView) {}

  ids(): string[] {
    return [...new Set([...Object.keys(this.file.devices ?? {}), ...Object.values(this.file.groups ?? {}).flat(), ...this.view.devices.keys()])].sort();
  }

  groupsOf(id: string): string[] {
    const own = this.file.devices?.[id]?.groups ?? [];
    const listed = Object.entries(this.file.groups ?? {}).filter(([, members]) => members.includes(id)).map(([g]) => g);
    const board = this.view.devices.get(id)?.reported?.board;
    const reported = board ? [`profile:${board.profile}`, `model:${board.model}`] : [];
    return [...new Set([...own, ...listed, ...reported])];
  }

  labelsOf(id: string): Record<string, string> {
    const board = this.view.devices.get(id)?.reported?.board;
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
      return ids;
    }
    const members = ids.filter((id) => this.groupsOf(id).includes(sel.group!));
    if (members.length === 0) throw new BerthError('notFound', `group "${sel.group}" has no devices`, { hint: 'groups come from the fleet file and from reports (profile:NAME, model:NAME); see berth fleet status' });
    return members;
  }
}
