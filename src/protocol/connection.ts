import net from 'node:net';
import tls from 'node:tls';
import type { IClientOptions, MqttClient } from 'mqtt';
// The client alone, not mqtt's index: that loads the WebSocket, SOCKS and browser transports as well,
// ~3 MiB of RSS on a board for code berth never runs.
import MqttClientModule from 'mqtt/lib/client';
import { BerthError } from '../errors.js';
import { readNamedFile } from '../host/read.js';
import { SESSION_EXPIRY_SECONDS } from './signing.js';
import type { DeviceTopics } from './topics.js';
import { MAX_PAYLOAD_BYTES } from './validate.js';

type ClientClass = typeof MqttClientModule.default;
// Node hands this CommonJS module over as its exports object ({ default: class }); vitest's transform
// hands over the class itself.
const MqttClientClass: ClientClass = (MqttClientModule as { default?: ClientClass }).default ?? (MqttClientModule as unknown as ClientClass);

/** A broker and how to log in to it: what the agent and the fleet tool both connect with. */
export interface BrokerLogin {
  /** mqtt://host:1883 or mqtts://host:8883 */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  /** PEM files for TLS: the broker's CA, and a client certificate + key for mTLS. */
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
}

/** How the agent reaches its broker (flags, config file or environment). */
export interface BrokerOptions extends BrokerLogin {
  /** Reconnect backoff: min(base · 2^n, max), jittered to 50–100 %. */
  readonly reconnectBaseMs?: number;
  readonly reconnectMaxMs?: number;
}

/** The largest MQTT packet the agent accepts from the broker (4 × the payload limit, headers included). */
export const MAX_PACKET_BYTES = 4 * MAX_PAYLOAD_BYTES;

const read = (file: string | undefined, what: string): Buffer | undefined => (file === undefined ? undefined : readNamedFile(file, what));

/** A broker URL and its TLS files, checked and read: what the agent and the fleet tool both connect with. */
export interface BrokerEndpoint {
  readonly url: URL;
  /** PEM contents, only the ones given. */
  readonly tls: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

export function brokerEndpoint(opts: BrokerLogin): BrokerEndpoint {
  const url = new URL(opts.url);
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') throw new BerthError('usage', `--broker must be mqtt://HOST:PORT or mqtts://HOST:PORT, not ${opts.url}`);
  const ca = read(opts.caFile, 'the CA file');
  const cert = read(opts.certFile, 'the client certificate');
  const key = read(opts.keyFile, 'the client key');
  return { url, tls: { ...(ca && { ca }), ...(cert && { cert }), ...(key && { key }) } };
}

/**
 * An MQTT 5 connection with a persistent session (so QoS 1 messages wait at the broker while the board
 * is offline), the retained `status` {online:false} as last will, and reconnects with jittered
 * exponential backoff instead of mqtt.js's fixed period, so a fleet coming back after a broker outage
 * does not reconnect in lockstep.
 */
export function connectBroker(opts: BrokerOptions, topics: DeviceTopics, onReconnectScheduled: (delayMs: number, attempt: number) => void): MqttClient {
  const { url, tls: pems } = brokerEndpoint(opts);
  const options: IClientOptions = {
    protocolVersion: 5,
    clientId: `berth-${topics.deviceId}`,
    clean: false,
    // MQTT 5's maximum packet size: the broker drops anything bigger for this client instead of
    // sending it, so a hostile 50 MB publish never reaches (and never inflates) a 512 MiB board. Above
    // MAX_PAYLOAD_BYTES on purpose: a payload a little over the limit still arrives and is rejected
    // with a reason the fleet can show.
    properties: { sessionExpiryInterval: SESSION_EXPIRY_SECONDS, maximumPacketSize: MAX_PACKET_BYTES },
    keepalive: 30,
    connectTimeout: 10_000,
    reconnectPeriod: 0,
    // mqtt-packet otherwise pre-builds a 2-byte Buffer for each of the 65,536 packet ids and lengths on
    // the first write: 6 MiB of heap, for a client that sends a few messages a minute.
    writeCache: false,
    ...(opts.username !== undefined && { username: opts.username }),
    ...(opts.password !== undefined && { password: opts.password }),
    will: { topic: topics.topic('status'), payload: Buffer.from(JSON.stringify({ online: false })), qos: 1, retain: true },
  };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const secure = url.protocol === 'mqtts:';
  const port = Number(url.port || (secure ? 8883 : 1883));
  const client: MqttClient = new MqttClientClass(
    () =>
      secure
        ? tls.connect({ host, port, ...(net.isIP(host) === 0 && { servername: host }), ...pems })
        : net.connect({ host, port }),
    options,
  );
  const base = opts.reconnectBaseMs ?? 1000;
  const max = opts.reconnectMaxMs ?? 60_000;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;
  client.on('connect', () => {
    attempt = 0;
  });
  client.on('close', () => {
    if (client.disconnecting || timer !== undefined) return;
    const delay = Math.round(Math.min(base * 2 ** attempt, max) * (0.5 + Math.random() / 2));
    attempt++;
    onReconnectScheduled(delay, attempt);
    timer = setTimeout(() => {
      timer = undefined;
      if (!client.disconnecting && !client.connected) client.reconnect();
    }, delay);
    timer.unref();
  });
  client.on('end', () => {
    if (timer) clearTimeout(timer);
  });
  return client;
}
