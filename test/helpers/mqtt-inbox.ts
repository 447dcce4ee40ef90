import type { MqttClient } from 'mqtt';

export interface InboxMessage {
  readonly topic: string;
  /** Parsed JSON, or the text when the payload is not JSON (a malformed message is a finding too). */
  readonly payload: any;
  readonly retain: boolean;
  /** Date.now() on arrival. */
  readonly at: number;
}

/** Records every message `client` receives into `inbox` (returned): what the fleet side saw, in order. */
export function recordMessages(client: MqttClient, inbox: InboxMessage[] = []): InboxMessage[] {
  client.on('message', (topic, payload, packet) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload.toString());
    } catch {
      parsed = payload.toString();
    }
    inbox.push({ topic, payload: parsed, retain: packet.retain, at: Date.now() });
  });
  return inbox;
}
