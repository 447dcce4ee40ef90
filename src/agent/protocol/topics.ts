/**
 * Topic names of protocol v1. Everything for one device lives under `berth/v1/<deviceId>/`, so a
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

  /** The command id of a `cmd/<id>` topic, or undefined for anything else. */
  commandId(topic: string): string | undefined {
    const prefix = `${this.base}/cmd/`;
    if (!topic.startsWith(prefix)) return undefined;
    const id = topic.slice(prefix.length);
    return id.includes('/') ? undefined : id;
  }
}
