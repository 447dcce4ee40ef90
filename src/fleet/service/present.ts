import type { Inventory } from '../inventory.js';
import type { DeviceRecord, RolloutDeviceRecord, RolloutRecord } from './store.js';

/**
 * Records → the API's JSON shapes (docs/fleet-api.yaml DeviceSummary, Device, RolloutSummary,
 * RolloutDevice): the one place they are built, for the API, the live stream and /metrics alike.
 */

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface DeviceSummary {
  readonly id: string;
  readonly online: boolean;
  readonly lastSeen: string | null;
  readonly agentVersion: string | null;
  readonly revision: number | null;
  readonly desiredRevision: number | null;
  readonly deployStatus: string | null;
  readonly deployPhase: string | null;
  readonly servicesUp: number;
  readonly servicesTotal: number;
  readonly cpuPercent: number | null;
  readonly memoryUsedBytes: number | null;
  readonly memoryTotalBytes: number | null;
  readonly temperatureC: number | null;
  readonly profile: string | null;
  readonly model: string | null;
  readonly groups: string[];
  readonly labels: Record<string, string>;
}

/** The board profile a device reports (`reported.board.profile`), or null. */
export function boardProfile(reported: Readonly<Record<string, unknown>> | undefined): string | null {
  const board = isObject(reported?.board) ? reported.board : {};
  return typeof board.profile === 'string' ? board.profile : null;
}

export function deviceSummary(d: DeviceRecord, inventory: Inventory): DeviceSummary {
  const r = d.reported ?? {};
  const services = isObject(r.services) ? Object.values(r.services) : [];
  const board = isObject(r.board) ? r.board : {};
  const agent = isObject(r.agent) ? r.agent : isObject(d.status?.agent) ? (d.status!.agent as Record<string, unknown>) : {};
  const t = d.telemetry;
  return {
    id: d.id,
    online: d.online,
    lastSeen: iso(d.lastSeen),
    agentVersion: typeof agent.version === 'string' ? agent.version : null,
    revision: typeof r.revision === 'number' ? r.revision : null,
    desiredRevision: d.desiredRevision ?? null,
    deployStatus: typeof r.status === 'string' ? r.status : null,
    deployPhase: r.status === 'applying' ? (d.phase ?? null) : null,
    servicesUp: services.filter((s) => isObject(s) && s.state === 'running').length,
    servicesTotal: services.length,
    cpuPercent: t?.cpuPercent ?? null,
    memoryUsedBytes: t?.memoryUsedBytes ?? null,
    memoryTotalBytes: t?.memoryTotalBytes ?? null,
    temperatureC: t?.temperatureC ?? null,
    profile: boardProfile(r),
    model: typeof board.model === 'string' ? board.model : null,
    groups: inventory.groupsOf(d.id),
    labels: inventory.labelsOf(d.id),
  };
}

export function deviceDetail(d: DeviceRecord, inventory: Inventory): DeviceSummary & { reported: unknown; status: unknown } {
  return { ...deviceSummary(d, inventory), reported: d.reported ?? null, status: d.status ?? null };
}

export function rolloutSummary(r: RolloutRecord): Record<string, unknown> {
  return {
    id: r.id, name: r.name, state: r.state, abortReason: r.abortReason ?? null, createdAt: iso(r.createdAt), finishedAt: iso(r.finishedAt),
    createdBy: r.createdBy, images: r.images,
    policy: { ratePerMin: r.policy.ratePerMin ?? null, abortAfterPct: r.policy.abortAfterPct ?? null, minDevices: r.policy.minDevices, timeoutMs: r.policy.timeoutMs },
    counts: r.counts,
  };
}

export function rolloutDevice(d: RolloutDeviceRecord): Record<string, unknown> {
  return { device: d.device, seq: d.seq, revision: d.revision, outcome: d.outcome, sentAt: iso(d.sentAt), sentBy: d.sentBy ?? null, finishedAt: iso(d.finishedAt), phase: d.phase ?? null, error: d.error ?? null };
}
