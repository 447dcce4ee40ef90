import { BerthError } from '../errors.js';

/** A loopback broker: nothing on the wire leaves the machine, so plain MQTT hides nothing from anyone. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * The transport rule, for the agent, the fleet tool and flash alike: credentials sent over plain
 * `mqtt://` to another machine can be read by anyone on the path (and so can every message), so a
 * broker URL like that with credentials is refused unless the user says `insecure` (`--insecure`,
 * agent.yaml or the fleet file's `insecure: true`). Loopback brokers and anonymous logins pass.
 * `what` names the flag or key that gave the broker.
 */
export function checkTransport(brokerUrl: string, withCredentials: boolean, insecure: boolean, what = '--broker'): void {
  let url: URL;
  try {
    url = new URL(brokerUrl);
  } catch {
    throw new BerthError('usage', `${what} must be mqtt://HOST:PORT or mqtts://HOST:PORT, not ${brokerUrl}`);
  }
  if (url.protocol !== 'mqtt:' || !withCredentials || insecure || isLoopbackHost(url.hostname)) return;
  throw new BerthError('usage', `${what} ${brokerUrl} is plain MQTT: the credentials and every message would cross the network unencrypted`, {
    hint: 'use mqtts:// (with --ca for a private CA), or pass --insecure (agent.yaml or fleet file: insecure: true) if the network is trusted',
  });
}
