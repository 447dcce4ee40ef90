/**
 * Topic names of protocol v1: the one place a `berth/v1/…` string is built or taken apart, for the
 * agent and the fleet side alike. Everything for one device lives under `berth/v1/<deviceId>/`, so a
 * broker ACL of `pattern readwrite berth/v1/%u/#` confines each device to its own subtree.
 */

export const TOPIC_ROOT = 'berth/v1';

/** Device ids are topic levels and ACL user names: no wildcards, separators or control characters. */
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const COMMAND_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}

export function isValidCommandId(id: string): boolean {
  return COMMAND_ID.test(id);
}

export type DeviceTopic = 'desired' | 'reported' | 'status' | 'progress' | 'events' | 'telemetry';

export class DeviceTopics {
  readonly base: string;

  constructor(readonly deviceId: string) {
    if (!isValidDeviceId(deviceId)) throw new Error(`invalid device id "${deviceId}": use 1–128 of [A-Za-z0-9_.:-], starting with a letter or digit`);
    this.base = `${TOPIC_ROOT}/${deviceId}`;
  }

  topic(t: DeviceTopic): string {
    return `${this.base}/${t}`;
  }

  /** What the agent subscribes to for commands: `cmd/+` (results go to `cmd/<id>/result`, not matched). */
  get commandFilter(): string {
    return `${this.base}/cmd/+`;
  }

  commandResult(id: string): string {
    return `${this.base}/cmd/${id}/result`;
  }

  /** Where a `logs` command with `follow` publishes the new lines (LogFollowMessage). */
  commandLogs(id: string): string {
    return `${this.base}/cmd/${id}/logs`;
  }

  /** The command id of a `cmd/<id>` topic, or undefined for anything else. */
  commandId(topic: string): string | undefined {
    const prefix = `${this.base}/cmd/`;
    if (!topic.startsWith(prefix)) return undefined;
    const id = topic.slice(prefix.length);
    return id.includes('/') ? undefined : id;
  }
}

/** A topic filter for `kind` of one device, or of every device with `'+'`. */
export function deviceFilter(device: string, kind: DeviceTopic): string {
  return `${TOPIC_ROOT}/${device}/${kind}`;
}

/** A topic filter for the command results of one device, or of every device with `'+'`. */
export function commandResultFilter(device: string): string {
  return `${TOPIC_ROOT}/${device}/cmd/+/result`;
}

/** A fleet process's own sync topic: under berth/v1/ so a fleet user's ACL covers it; `_fleet` is no valid device id. */
export function fleetSyncTopic(clientId: string): string {
  return `${TOPIC_ROOT}/_fleet/sync/${clientId}`;
}

export interface ParsedTopic {
  readonly device: string;
  readonly kind: string;
  readonly commandId?: string;
}

/** Splits `berth/v1/<device>/<kind>` and `berth/v1/<device>/cmd/<id>/result`; undefined for anything else. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  if (!topic.startsWith(`${TOPIC_ROOT}/`)) return undefined;
  const parts = topic.slice(TOPIC_ROOT.length + 1).split('/');
  const device = parts[0]!;
  if (!isValidDeviceId(device)) return undefined;
  if (parts.length === 2) return { device, kind: parts[1]! };
  if (parts.length === 4 && parts[1] === 'cmd' && parts[3] === 'result') return { device, kind: 'result', commandId: parts[2]! };
  return undefined;
}
