import { parseTopic } from '../protocol/topics.js';
import { SortedIds } from './sorted-ids.js';
import type { CommandResult, DeployStatus, ReportedState, StatusMessage } from '../protocol/types.js';

/**
 * What the fleet tool knows about each device, built only from what the broker delivers: the retained
 * `status`, `reported` and `desired`, and the live `progress`, `events` and `telemetry`. Device
 * messages are checked for the fields this module reads; anything else about them is passed through.
 */

/** The parts of a telemetry sample the fleet shows (src/protocol/schemas/telemetry.json). */
export interface TelemetrySummary {
  readonly cpuPercent?: number;
  readonly memoryUsedBytes?: number;
  readonly memoryTotalBytes?: number;
  readonly temperatureC?: number;
  readonly time: string;
}

export interface ProgressInfo {
  readonly revision: number;
  readonly phase: string;
  readonly service?: string;
}

export interface DeviceView {
  readonly id: string;
  online?: boolean;
  status?: StatusMessage;
  reported?: ReportedState;
  /** Revision of the retained desired state, 0 when the broker has none (or an empty one). */
  desiredRevision?: number;
  /** The retained desired state as published (a signed envelope, or JSON): `fleet upgrade` republishes its app. */
  desired?: string;
  telemetry?: TelemetrySummary;
  progress?: ProgressInfo;
  /** When the broker last delivered anything from this device (ms since the epoch, fleet clock). */
  lastSeen?: number;
}

export type FleetChange =
  | { readonly kind: 'status'; readonly device: string; readonly status: StatusMessage; readonly retained: boolean }
  | { readonly kind: 'reported'; readonly device: string; readonly reported: ReportedState; readonly retained: boolean }
  | { readonly kind: 'desired'; readonly device: string; readonly revision: number; readonly payload?: string }
  | { readonly kind: 'progress'; readonly device: string; readonly progress: ProgressInfo }
  | { readonly kind: 'telemetry'; readonly device: string; readonly telemetry: TelemetrySummary }
  | { readonly kind: 'event'; readonly device: string; readonly event: Record<string, unknown> }
  | { readonly kind: 'result'; readonly device: string; readonly result: CommandResult };


const DEPLOY_STATUSES: ReadonlySet<string> = new Set<DeployStatus>(['applying', 'applied', 'failed', 'rolled-back', 'rejected', 'superseded']);
const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isRevision = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function parseJsonObject(payload: Buffer): Record<string, any> | undefined {
  try {
    const v: unknown = JSON.parse(payload.toString('utf8'));
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function telemetrySummary(t: Record<string, any>): TelemetrySummary {
  const host = isObject(t.host) ? t.host : {};
  const memory = isObject(host.memory) ? host.memory : {};
  const cpu = isObject(host.cpu) ? num(host.cpu.percent) : undefined;
  const used = num(memory.usedBytes);
  const total = num(memory.totalBytes);
  const temp = num(host.temperatureC);
  return {
    time: typeof t.time === 'string' ? t.time : new Date().toISOString(),
    ...(cpu !== undefined && { cpuPercent: cpu }),
    ...(used !== undefined && { memoryUsedBytes: used }),
    ...(total !== undefined && { memoryTotalBytes: total }),
    ...(temp !== undefined && { temperatureC: temp }),
  };
}

/** Turns one delivered message into a change, or undefined when it is not a well-formed device message. */
export function parseMessage(topic: string, payload: Buffer, retained: boolean): FleetChange | undefined {
  const t = parseTopic(topic);
  if (!t) return undefined;
  const { device } = t;
  if (t.kind === 'desired') {
    // An empty retained desired is a cleared one: no revision to count from.
    if (payload.length === 0) return { kind: 'desired', device, revision: 0 };
    const d = parseJsonObject(payload);
    return d && isRevision(d.revision) ? { kind: 'desired', device, revision: d.revision, payload: payload.toString('utf8') } : undefined;
  }
  if (payload.length === 0) return undefined;
  const m = parseJsonObject(payload);
  if (!m) return undefined;
  switch (t.kind) {
    case 'status':
      return typeof m.online === 'boolean' ? { kind: 'status', device, status: m as StatusMessage, retained } : undefined;
    case 'reported':
      return isRevision(m.revision) && DEPLOY_STATUSES.has(m.status) && isObject(m.services)
        ? { kind: 'reported', device, reported: m as ReportedState, retained }
        : undefined;
    case 'progress':
      return isRevision(m.revision) && typeof m.phase === 'string'
        ? { kind: 'progress', device, progress: { revision: m.revision, phase: m.phase, ...(typeof m.service === 'string' && { service: m.service }) } }
        : undefined;
    case 'telemetry':
      return { kind: 'telemetry', device, telemetry: telemetrySummary(m) };
    case 'events':
      return typeof m.kind === 'string' ? { kind: 'event', device, event: m } : undefined;
    case 'result':
      return typeof m.status === 'string' && typeof m.result === 'number' ? { kind: 'result', device, result: m as CommandResult } : undefined;
    default:
      return undefined;
  }
}

/** The fleet as the broker shows it: one DeviceView per device id heard of. */
export class FleetView {
  /** Add devices only through device(): it keeps `ids` in step. */
  readonly devices = new Map<string, DeviceView>();
  /** The keys of `devices`, kept sorted as devices appear (the fleet service lists pages of them). */
  readonly ids = new SortedIds();
  private readonly appliedListeners = new Set<(c: FleetChange, d: DeviceView) => void>();

  /**
   * Calls `fn` after each change apply() folds in, synchronously, with the device as it now is: for
   * whoever keeps something derived from the view up to date as it changes (the fleet service's filter
   * menus, device-filters.ts) instead of rebuilding it from every device per read. Devices added by
   * device() alone (not through apply) are not announced. `fn` must be cheap and must not throw: it runs
   * for every message the broker delivers. Returns the unsubscribe function.
   */
  onApplied(fn: (c: FleetChange, d: DeviceView) => void): () => void {
    this.appliedListeners.add(fn);
    return () => this.appliedListeners.delete(fn);
  }

  device(id: string): DeviceView {
    let d = this.devices.get(id);
    if (!d) {
      d = { id };
      this.devices.set(id, d);
      this.ids.add(id);
    }
    return d;
  }

  /** Folds a change into the view. `now` is the fleet's clock (ms), for lastSeen. */
  apply(c: FleetChange, now: number): void {
    const d = this.device(c.device);
    this.fold(d, c, now);
    for (const fn of this.appliedListeners) fn(c, d);
  }

  private fold(d: DeviceView, c: FleetChange, now: number): void {
    switch (c.kind) {
      case 'status':
        d.status = c.status;
        d.online = c.status.online;
        break;
      case 'reported':
        d.reported = c.reported;
        break;
      case 'desired':
        d.desiredRevision = c.revision;
        if (c.payload === undefined) delete d.desired;
        else d.desired = c.payload;
        return; // published by the fleet, not a sign of life
      case 'progress':
        d.progress = c.progress;
        break;
      case 'telemetry':
        d.telemetry = c.telemetry;
        break;
      default:
        break;
    }
    // A retained message may be days old: it says the device exists, not that it was just seen.
    const retained = (c.kind === 'status' || c.kind === 'reported') && c.retained;
    const stamp = retained ? Date.parse((c.kind === 'status' ? c.status.time : c.reported.time) ?? '') : now;
    if (Number.isFinite(stamp) && (d.lastSeen === undefined || stamp > d.lastSeen)) d.lastSeen = stamp;
  }

  /** The revision a new desired state for `id` must carry: one above both the retained desired and the reported. */
  nextRevision(id: string): number {
    const d = this.devices.get(id);
    return Math.max(d?.desiredRevision ?? 0, d?.reported?.revision ?? 0) + 1;
  }
}
