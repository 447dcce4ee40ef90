import type { Inventory } from './inventory.js';
import type { FleetView } from './view.js';

/** One row of `berth fleet status`; fields the fleet has not heard are absent. */
export interface DeviceRow {
  readonly device: string;
  readonly online: boolean;
  readonly groups: string[];
  readonly revision?: number;
  readonly status?: string;
  readonly desiredRevision?: number;
  readonly servicesUp?: number;
  readonly servicesTotal?: number;
  readonly cpuPercent?: number;
  readonly memoryPercent?: number;
  readonly temperatureC?: number;
  /** ISO time the device was last heard of (a retained message's own time, or a live message's arrival). */
  readonly lastSeen?: string;
  readonly board?: string;
  /** The agent's version (its install directory when it has one), and how its last self-update ended when that was not well. */
  readonly agent?: string;
  readonly agentUpgrade?: string;
}

export function deviceRows(inventory: Inventory, view: FleetView, ids: readonly string[] = inventory.ids()): DeviceRow[] {
  return ids.map((id) => {
    const d = view.devices.get(id);
    const r = d?.reported;
    const services = r ? Object.values(r.services) : undefined;
    const t = d?.telemetry;
    const mem = t?.memoryUsedBytes !== undefined && t.memoryTotalBytes ? (t.memoryUsedBytes * 100) / t.memoryTotalBytes : undefined;
    return {
      device: id,
      online: d?.online === true,
      groups: inventory.groupsOf(id).filter((g) => !g.startsWith('model:')),
      ...(r && { revision: r.revision, status: r.status, board: r.board.profile, agent: r.agent.installed ?? r.agent.version }),
      ...(r?.agent.upgrade && r.agent.upgrade.state !== 'upgraded' && { agentUpgrade: `${r.agent.upgrade.state}${r.agent.upgrade.cause ? `: ${r.agent.upgrade.cause}` : ''}` }),
      ...(d?.desiredRevision !== undefined && d.desiredRevision > 0 && { desiredRevision: d.desiredRevision }),
      ...(services && { servicesUp: services.filter((s) => s.state === 'running').length, servicesTotal: services.length }),
      ...(t?.cpuPercent !== undefined && { cpuPercent: Math.round(t.cpuPercent * 10) / 10 }),
      ...(mem !== undefined && { memoryPercent: Math.round(mem * 10) / 10 }),
      ...(t?.temperatureC !== undefined && { temperatureC: t.temperatureC }),
      ...(d?.lastSeen !== undefined && { lastSeen: new Date(d.lastSeen).toISOString() }),
    };
  });
}

const ago = (iso: string | undefined, now: number): string => {
  if (iso === undefined) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : s < 172800 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86400)}d ago`;
};

/** Text table cells, header first (the CLI aligns them). */
export function rowCells(rows: readonly DeviceRow[], now: number): string[][] {
  const opt = (v: number | undefined, unit = ''): string => (v === undefined ? '-' : `${v}${unit}`);
  return [
    ['DEVICE', 'ONLINE', 'REVISION', 'STATUS', 'SERVICES', 'AGENT', 'CPU', 'MEMORY', 'TEMP', 'LAST SEEN', 'GROUPS'],
    ...rows.map((r) => [
      r.device,
      r.online ? 'yes' : 'no',
      r.revision === undefined ? '-' : r.desiredRevision !== undefined && r.desiredRevision > r.revision ? `${r.revision} (→${r.desiredRevision})` : String(r.revision),
      r.status ?? '-',
      r.servicesTotal === undefined ? '-' : `${r.servicesUp}/${r.servicesTotal}`,
      `${r.agent ?? '-'}${r.agentUpgrade ? ` (${r.agentUpgrade.split(':')[0]})` : ''}`,
      opt(r.cpuPercent, '%'),
      opt(r.memoryPercent, '%'),
      opt(r.temperatureC, '°C'),
      ago(r.lastSeen, now),
      r.groups.join(',') || '-',
    ]),
  ];
}
