import type { VolumeMount } from '../runtime/options.js';
import type { App } from './model.js';
import { invalidAt, keyPath } from './service-key.js';

/**
 * balena's feature labels (`io.balena.features.*`), so balena projects run unchanged: each asks for
 * the host mounts (and environment) balena's supervisor gives.
 *
 * - `supervisor-api` is given by the berth agent (src/agent/supervisor-api): its variables carry a
 *   per-app key and the device's address, so they are added on the device when the container is
 *   created, not here (a file must not carry a device's secret).
 * - `balena-socket` and `balena-api` are accepted as docker compose accepts them (plain labels), with a
 *   warning naming the service and saying what the container will not get: berth has no Docker
 *   Engine API and no balenaCloud API to give.
 * - `gpu` is refused naming the label, never silently left out.
 */

const PREFIX = 'io.balena.features.';
/** The label that asks for balena's supervisor API (the agent's local subset). */
export const SUPERVISOR_API_LABEL = `${PREFIX}supervisor-api`;

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
  // The agent adds its variables at create time (src/agent/supervisor-api/env.ts).
  'supervisor-api': { volumes: [] },
};

/** Accepted as plain labels, as docker compose does; what the container will not get (the warning). */
const NOT_GIVEN: Readonly<Record<string, string>> = {
  'balena-socket': 'no engine socket is mounted: berth has no Docker Engine API (a tool that talks to DOCKER_HOST finds no engine)',
  'balena-api': 'no BALENA_API_KEY or BALENA_API_URL is set (berth devices talk to their fleet over MQTT, not balenaCloud)',
};

/** Why the others cannot be given on a berth device. */
const REFUSED: Readonly<Record<string, string>> = {
  gpu: 'GPU device requests are not supported; pass the device nodes with devices:',
};

/** balena's checkTruthy: 1, true, on (any case) turn a feature on. */
const truthy = (v: string): boolean => ['1', 'true', 'on'].includes(v.trim().toLowerCase());

/** Whether a container's labels ask for the supervisor API (the one place its label is read). */
export const wantsSupervisorApi = (labels: Readonly<Record<string, string>>): boolean => {
  const v = labels[SUPERVISOR_API_LABEL];
  return v !== undefined && truthy(v);
};

/**
 * What the app's services ask for through balena's labels and will not get, one message per service
 * and label (`berth compose config`, `berth deploy` and the agent's deploy events print them).
 */
export function balenaWarnings(app: App): string[] {
  const out: string[] = [];
  for (const s of app.services.values()) {
    for (const [label, value] of Object.entries(s.run.labels)) {
      const missing = label.startsWith(PREFIX) && truthy(value) ? NOT_GIVEN[label.slice(PREFIX.length)] : undefined;
      if (missing !== undefined) out.push(`services.${s.name}.labels.${label}: accepted as a plain label; ${missing}`);
    }
  }
  return out;
}

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
    if (NOT_GIVEN[feature] !== undefined) continue;
    const f = FEATURES[feature];
    if (f === undefined) throw invalidAt(keyPath(service, `labels.${label}`), `unknown balena feature (berth gives ${[...Object.keys(FEATURES), ...Object.keys(NOT_GIVEN)].join(', ')})`);
    volumes.push(...f.volumes);
    env.push(...(f.env ?? []));
  }
  return { volumes, env };
}
