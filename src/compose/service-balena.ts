import type { VolumeMount } from '../runtime/options.js';
import { invalidAt, keyPath } from './service-key.js';

/**
 * balena's feature labels (`io.balena.features.*`), so balena projects run unchanged: each asks for
 * the host mounts (and environment) balena's supervisor gives. The ones that need balena's own
 * services (its supervisor API, its engine socket, its cloud API key, its GPU device requests) are
 * refused naming the label, never silently left out.
 */

const PREFIX = 'io.balena.features.';

const bind = (p: string, readOnly = false): VolumeMount => ({ source: p, target: p, readOnly, kind: 'bind' });
const DBUS_MOUNT: VolumeMount = { source: '/run/dbus', target: '/host/run/dbus', readOnly: false, kind: 'bind' };

/** What each feature adds, as balena-supervisor does. */
const FEATURES: Readonly<Record<string, { readonly volumes: readonly VolumeMount[]; readonly env?: readonly string[] }>> = {
  dbus: { volumes: [DBUS_MOUNT], env: ['DBUS_SYSTEM_BUS_ADDRESS=unix:path=/host/run/dbus/system_bus_socket'] },
  sysfs: { volumes: [bind('/sys')] },
  procfs: { volumes: [bind('/proc')] },
  'kernel-modules': { volumes: [bind('/lib/modules')] },
  firmware: { volumes: [bind('/lib/firmware')] },
  'journal-logs': { volumes: [bind('/var/log/journal', true), bind('/run/log/journal', true), bind('/etc/machine-id', true)] },
};

/** Why the others cannot be given on a berth device. */
const REFUSED: Readonly<Record<string, string>> = {
  'supervisor-api': "it reaches balena's supervisor API, which a berth device does not run",
  'balena-socket': "it binds balena's engine socket; berth has no Docker-compatible engine socket",
  'balena-api': "it injects a balenaCloud API key; berth devices talk to their fleet over MQTT",
  gpu: 'GPU device requests are not supported; pass the device nodes with devices:',
};

/** balena's checkTruthy: 1, true, on (any case) turn a feature on. */
const truthy = (v: string): boolean => ['1', 'true', 'on'].includes(v.trim().toLowerCase());

export interface BalenaFeatures {
  readonly volumes: readonly VolumeMount[];
  /** `K=V` entries placed before the service's own environment, so its values win. */
  readonly env: readonly string[];
}

/** The host mounts and environment a service's (stringified) labels ask for through balena's features. */
export function balenaFeatures(service: string, labels: Readonly<Record<string, string>>): BalenaFeatures {
  const volumes: VolumeMount[] = [];
  const env: string[] = [];
  for (const [label, value] of Object.entries(labels)) {
    if (!label.startsWith(PREFIX) || !truthy(value)) continue;
    const feature = label.slice(PREFIX.length);
    const refused = REFUSED[feature];
    if (refused !== undefined) throw invalidAt(keyPath(service, `labels.${label}`), `not supported: ${refused}`, `remove the label`);
    const f = FEATURES[feature];
    if (f === undefined) throw invalidAt(keyPath(service, `labels.${label}`), `unknown balena feature (berth gives ${Object.keys(FEATURES).join(', ')})`);
    volumes.push(...f.volumes);
    env.push(...(f.env ?? []));
  }
  return { volumes, env };
}
