import crypto from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { BerthError } from '../errors.js';
import { brokerEndpoint, type BrokerLogin } from '../protocol/connection.js';
import { commandResultFilter, deviceFilter, fleetSyncTopic, type DeviceTopic } from '../protocol/topics.js';
import { parseMessage, type FleetChange } from './view.js';

/** How the fleet tool reaches the broker. */
export interface FleetBrokerOptions extends BrokerLogin {  /** Subscribe through `$share/<group>/…` so several fleet processes split the live messages. */
  readonly shareGroup?: string;
}

export type DeviceKind = DeviceTopic;

/**
 * The fleet tool's MQTT 5 connection: a clean session with a random client id (so any number of
 * fleet processes can run), no last will (a fleet process is not a device), plain MQTT 5 topics only.
 * Every delivered device message goes to the change handler, parsed by view.ts.
 */
export class FleetLink {
  private readonly syncTopic: string;
  private readonly syncWaiters = new Map<string, () => void>();

  private constructor(readonly client: MqttClient, private readonly shareGroup: string | undefined) {
    this.syncTopic = fleetSyncTopic(client.options.clientId ?? '');
  }

  static async connect(opts: FleetBrokerOptions): Promise<FleetLink> {
    const { tls } = brokerEndpoint(opts);
    if (opts.shareGroup !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(opts.shareGroup)) throw new BerthError('usage', `--share takes a name of [A-Za-z0-9_.-], not "${opts.shareGroup}"`);
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: `berth-fleet-${crypto.randomBytes(6).toString('hex')}`,
      clean: true,
      keepalive: 30,
      connectTimeout: 10_000,
      reconnectPeriod: 1000,
      ...(opts.username !== undefined && { username: opts.username }),
      ...(opts.password !== undefined && { password: opts.password }),
      ...tls,
    };
    const client = mqtt.connect(opts.url, options);
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        client.end(true);
        reject(new BerthError(/not authorized|bad user name/i.test(err.message) ? 'auth' : 'network', `cannot connect to the broker ${opts.url}: ${err.message}`, { cause: err }));
      };
      client.once('connect', () => {
        client.off('error', fail);
        resolve();
      });
      client.once('error', fail);
      const timer = setTimeout(() => fail(new Error('no answer within 10 s')), 10_000);
      timer.unref();
      client.once('connect', () => clearTimeout(timer));
    });
    return new FleetLink(client, opts.shareGroup);
  }

  /** Calls `fn` with every well-formed device message; returns the unsubscribe function. */
  onChange(fn: (c: FleetChange) => void): () => void {
    const handler = (topic: string, payload: Buffer, packet: { retain?: boolean }): void => {
      if (topic === this.syncTopic) {
        const waiter = this.syncWaiters.get(payload.toString());
        this.syncWaiters.delete(payload.toString());
        waiter?.();
        return;
      }
      const c = parseMessage(topic, payload, packet.retain === true);
      if (c) fn(c);
    };
    this.client.on('message', handler);
    return () => this.client.off('message', handler);
  }

  /**
   * Subscribes to the given kinds for `devices` (wildcard `+` for all). Retained messages arrive as
   * the broker sends them; call `sync()` to wait for them. With a share group, `live` kinds go through
   * `$share/<group>/…` (MQTT 5 shared subscriptions deliver no retained messages, so `retained` kinds
   * are always subscribed directly).
   */
  async subscribe(kinds: readonly DeviceKind[], opts: { devices?: readonly string[]; results?: boolean; shared?: boolean } = {}): Promise<void> {
    const ids = opts.devices ?? ['+'];
    const share = opts.shared && this.shareGroup !== undefined ? `$share/${this.shareGroup}/` : '';
    const filters = ids.flatMap((id) => [...kinds.map((k) => deviceFilter(id, k)), ...(opts.results ? [commandResultFilter(id)] : [])]);
    // Chunks keep each SUBSCRIBE packet small when a long --device list is given.
    for (let i = 0; i < filters.length; i += 100) {
      // QoS 0: mosquitto drops QoS 1 messages for a client beyond max_inflight + max_queued_messages
      // (120 with scripts/mosquitto/berth.conf), and a fleet's retained snapshot is 3 per device;
      // QoS 0 is only dropped when 100 packets wait unwritten on the socket. What a lost live
      // message would hide, deploy re-reads from the retained state before giving a device up.
      const granted = await this.client.subscribeAsync(filters.slice(i, i + 100).map((f) => share + f), { qos: 0 });
      const refused = granted.filter((g) => g.qos > 2);
      if (refused.length > 0) throw new BerthError('auth', `the broker refused the subscription to ${refused[0]!.topic} (reason ${refused[0]!.qos}): the fleet user needs read access to berth/v1/#`);
    }
  }

  /**
   * Has the broker send the retained `kinds` of `devices` again (a fresh subscription to each
   * device's topics, dropped afterwards) and waits for them.
   */
  async reread(kinds: readonly DeviceKind[], devices: readonly string[]): Promise<void> {
    const filters = devices.flatMap((id) => kinds.map((k) => deviceFilter(id, k)));
    for (let i = 0; i < filters.length; i += 100) await this.client.subscribeAsync(filters.slice(i, i + 100), { qos: 0 });
    await this.sync();
    for (let i = 0; i < filters.length; i += 100) await this.client.unsubscribeAsync(filters.slice(i, i + 100));
  }

  /**
   * Resolves once every message the broker queued for this client before the call has arrived
   * (the retained messages of earlier subscriptions): a marker published to our own topic comes back
   * after them, since a broker delivers one client's messages in order.
   */
  async sync(): Promise<void> {
    if (!this.syncSubscribed) {
      await this.client.subscribeAsync(this.syncTopic, { qos: 1 });
      this.syncSubscribed = true;
    }
    const token = crypto.randomBytes(8).toString('hex');
    const arrived = new Promise<void>((resolve) => this.syncWaiters.set(token, resolve));
    await this.client.publishAsync(this.syncTopic, token, { qos: 1 });
    await arrived;
  }

  private syncSubscribed = false;

  async publish(topic: string, payload: string, opts: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: opts.qos ?? 1, retain: opts.retain ?? false });
  }

  async close(): Promise<void> {
    await this.client.endAsync().catch(() => undefined);
  }
}
