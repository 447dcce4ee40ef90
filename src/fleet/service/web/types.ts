// The API's JSON shapes as the dashboard reads them: a transcription of the schemas in
// docs/fleet-api.yaml (components.schemas), the one contract between the service and this page.
// Only what the pages use is typed; the service may send more. What the service passes through from
// devices as they sent it is the device protocol's own type (src/protocol/types.ts: types only, no code).
import type { CommandResult, ServiceReport } from '../../../protocol/types.js';

export type { CommandResult, ServiceReport };

export type Scope = 'read' | 'deploy' | 'admin';

export interface Session {
  readonly scope: Scope;
  /** Cookie sessions only: sent back as X-CSRF-Token on every write. */
  readonly csrfToken?: string;
  readonly expires?: string;
}

/** docs/fleet-api.yaml Token: never the secret (only POST /tokens's answer carries it, once). */
export interface Token {
  readonly id: string;
  readonly name: string;
  readonly scope: Scope;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
}

export type DeployStatus = 'applying' | 'applied' | 'failed' | 'rolled-back' | 'rejected' | 'superseded';

export interface DeviceSummary {
  readonly id: string;
  readonly online: boolean;
  readonly lastSeen?: string | null;
  readonly agentVersion?: string | null;
  readonly revision?: number | null;
  readonly desiredRevision?: number | null;
  readonly deployStatus?: DeployStatus | null;
  readonly deployPhase?: string | null;
  readonly servicesUp?: number;
  readonly servicesTotal?: number;
  readonly cpuPercent?: number | null;
  readonly memoryUsedBytes?: number | null;
  readonly memoryTotalBytes?: number | null;
  readonly temperatureC?: number | null;
  readonly profile?: string | null;
  readonly model?: string | null;
  readonly groups: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

/** GET /api/v1/devices with `limit`: one page; `next` is the `after` of the next page, null on the last. */
export interface DevicePage {
  readonly devices: readonly DeviceSummary[];
  readonly next: string | null;
}

/** GET /api/v1/device-filters: the filter menus' choices, and the fleet's size. */
export interface FleetFilters {
  readonly groups: readonly string[];
  readonly labels: readonly string[];
  readonly profiles: readonly string[];
  readonly total: number;
  readonly online: number;
}

export interface Device extends DeviceSummary {
  readonly reported?: { readonly services?: Readonly<Record<string, ServiceReport>>; readonly error?: { readonly message: string } | null } | null;
}

export interface TelemetryPoint {
  readonly time: string;
  readonly cpuPercent?: number | null;
  readonly memoryUsedBytes?: number | null;
  readonly memoryTotalBytes?: number | null;
  readonly temperatureC?: number | null;
}

export interface FleetEvent {
  readonly seq: number;
  readonly time: string;
  readonly device?: string | null;
  readonly rollout?: string | null;
  readonly type: string;
  readonly data?: unknown;
}

export type RolloutState = 'running' | 'paused' | 'completed' | 'aborted' | 'cancelled';
export type Outcome = 'pending' | 'sent' | 'applied' | 'failed' | 'rolled-back' | 'rejected' | 'superseded' | 'timed-out' | 'not-sent';

export interface RolloutSummary {
  readonly id: string;
  readonly name: string;
  readonly state: RolloutState;
  readonly abortReason?: string | null;
  readonly createdAt: string;
  readonly finishedAt?: string | null;
  readonly createdBy?: string;
  readonly images: Readonly<Record<string, string>>;
  readonly counts: Readonly<Record<Outcome | 'total', number>>;
}

export interface RolloutDevice {
  readonly device: string;
  /** Place in the sending order: the `after` of paging. */
  readonly seq: number;
  readonly revision: number;
  readonly outcome: Outcome;
  readonly sentAt?: string | null;
  readonly finishedAt?: string | null;
  readonly phase?: string | null;
  readonly error?: string | null;
}

export interface Rollout extends RolloutSummary {
  readonly devices: readonly RolloutDevice[];
  /** Asked with `limit`: the `after` of the next page of devices, null on the last. */
  readonly next?: number | null;
}

export interface RolloutRequest {
  readonly compose: string;
  readonly name?: string;
  readonly devices?: readonly string[];
  readonly group?: string;
  readonly all?: boolean;
  readonly rate?: string;
  readonly abortAfterPct?: number;
  readonly timeout?: string;
}

export interface LogLine {
  readonly time: string;
  readonly stream: string;
  readonly text: string;
}
