import fs from 'node:fs';
import { readConfig } from '../config/read.js';
import { BerthError } from '../errors.js';
import validateAgentConfig from '../generated/agent-config.validate.js';
import { parseDuration } from '../duration.js';
import { DEFAULT_TRIAL_WINDOW_S } from './upgrade/records.js';
import { readNamedFile } from '../host/read.js';
import type { BrokerOptions } from '../protocol/connection.js';
import { checkTransport } from '../protocol/transport.js';
import { FleetPublicKey } from '../protocol/signing.js';
import { DEFAULT_DEPLOY_POLICY, type DeployPolicy } from './policy.js';
import type { FleetSecurity } from './run.js';
import { isValidDeviceId } from '../protocol/topics.js';

/** The connection flags of `berth agent` (the CLI parses them; this resolves them). */
export interface ConnectionFlags {
  readonly broker?: string;
  readonly deviceId?: string;
  readonly username?: string;
  readonly passwordFile?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly config?: string;
  readonly telemetryInterval?: string;
  /** `--insecure`: plain mqtt:// with a password to another machine is accepted. */
  readonly insecure?: boolean;
}

const DEFAULT_CONFIG = '/etc/berth/agent.yaml';

/** agent.yaml (schema: src/config/schemas/agent.json); berth flash writes it (src/flash/payload.ts). */
export interface AgentConfigFile {
  readonly broker?: string;
  readonly deviceId?: string;
  readonly username?: string;
  readonly password?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  /** A duration, or a number of seconds. */
  readonly telemetryInterval?: string | number;
  readonly insecure?: boolean;
  /** The fleet's public key, base64 of the raw 32 bytes. */
  readonly fleetKey?: string;
  readonly allowUnsigned?: boolean;
  readonly deployPolicy?: Partial<DeployPolicy>;
  /** Self-update (docs/upgrade.md): the new version's trial window, a duration or seconds. */
  readonly upgrade?: { readonly trialWindow?: string | number };
  /** balena's supervisor API: `allowPower` lets apps reboot or power off the board. */
  readonly supervisorApi?: { readonly allowPower?: boolean };
}

/** Reads and schema-checks an agent config; BerthError(notFound | invalid) as for every config file (src/config/read.ts). */
export function readAgentConfig(file: string): Promise<AgentConfigFile> {
  return readConfig<AgentConfigFile>(file, { what: 'agent config', validate: validateAgentConfig });
}

/** Flags, then the config file, then the environment: where the agent finds its broker. */
export async function resolveAgentConfig(
  opts: ConnectionFlags, env: NodeJS.ProcessEnv,
): Promise<{ broker?: BrokerOptions & { deviceId: string }; security?: FleetSecurity; telemetryInterval?: string; allowPower?: true; trialWindowS?: number }> {
  let file: AgentConfigFile = {};
  // A provisioned board (berth flash) has its broker in /etc/berth/agent.yaml; flags and env still win.
  const configFile = opts.config ?? env.BERTH_CONFIG ?? (fs.existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  if (configFile !== undefined) file = await readAgentConfig(configFile);
  const url = opts.broker ?? file.broker ?? env.BERTH_BROKER;
  // A bare number in YAML is seconds, as parseDuration reads a bare number.
  const telemetryInterval = opts.telemetryInterval ?? (file.telemetryInterval === undefined ? undefined : String(file.telemetryInterval));
  // Only when on, so a config that does not mention it resolves as before.
  const power = file.supervisorApi?.allowPower === true ? { allowPower: true as const } : {};
  const trial = file.upgrade?.trialWindow === undefined ? {} : { trialWindowS: trialWindowSeconds(file.upgrade.trialWindow, configFile!) };
  if (url === undefined || url === '') return { ...(telemetryInterval !== undefined && { telemetryInterval }), ...power, ...trial };
  const deviceId = opts.deviceId ?? file.deviceId ?? env.BERTH_DEVICE_ID;
  if (deviceId === undefined || !isValidDeviceId(deviceId)) {
    throw new BerthError('usage', deviceId === undefined ? 'a broker needs --device-id (or deviceId in --config, or BERTH_DEVICE_ID)' : `invalid device id "${deviceId}": use 1–128 of [A-Za-z0-9_.:-]`);
  }
  const password = opts.passwordFile !== undefined ? readSecret(opts.passwordFile) : file.password ?? env.BERTH_MQTT_PASSWORD;
  const username = opts.username ?? file.username ?? (password !== undefined ? deviceId : undefined);
  const ca = opts.ca ?? file.ca;
  const cert = opts.cert ?? file.cert;
  const key = opts.key ?? file.key;
  checkTransport(url, password !== undefined || cert !== undefined, opts.insecure === true || file.insecure === true, opts.broker !== undefined ? '--broker' : 'broker');
  return {
    broker: {
      url, deviceId, ...(username !== undefined && { username }), ...(password !== undefined && { password }),
      ...(ca !== undefined && { caFile: ca }), ...(cert !== undefined && { certFile: cert }), ...(key !== undefined && { keyFile: key }),
    },
    security: fleetSecurity(file),
    ...(telemetryInterval !== undefined && { telemetryInterval }),
    ...power,
    ...trial,
  };
}

/**
 * `upgrade.trialWindow` in whole seconds, 10 s to 1 h: the launcher's timer is `sleep N`, and a window
 * under 10 s would roll back a healthy agent that is merely slow to start.
 */
function trialWindowSeconds(v: string | number, file: string): number {
  const key = `upgrade.trialWindow in ${file}`;
  const ms = typeof v === 'number' ? v * 1000 : parseDuration(v, key);
  if (ms < 10_000 || ms > 3_600_000) throw new BerthError('invalid', `${key}: ${JSON.stringify(v)} is outside 10s to 1h`, { hint: `the default is ${DEFAULT_TRIAL_WINDOW_S}s` });
  return Math.ceil(ms / 1000);
}

/** Who may deploy what: agent.yaml's fleetKey, allowUnsigned and deployPolicy (defaults: nothing beyond the sandbox). */
function fleetSecurity(file: AgentConfigFile): FleetSecurity {
  return {
    ...(file.fleetKey !== undefined && { fleetKey: FleetPublicKey.fromBase64(file.fleetKey, 'agent config fleetKey') }),
    allowUnsigned: file.allowUnsigned === true,
    policy: { ...DEFAULT_DEPLOY_POLICY, ...file.deployPolicy },
  };
}

function readSecret(file: string): string {
  return readNamedFile(file, '--password-file').toString('utf8').trim();
}
