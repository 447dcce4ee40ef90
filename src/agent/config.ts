import fs from 'node:fs';
import { BerthError } from '../errors.js';
import { readNamedFile } from '../host/read.js';
import { parseYaml } from '../yaml.js';
import type { BrokerOptions } from '../protocol/connection.js';
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
}

const DEFAULT_CONFIG = '/etc/berth/agent.yaml';

interface AgentConfigFile {
  broker?: string;
  deviceId?: string;
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  key?: string;
  telemetryInterval?: string;
}

/** Flags, then the config file, then the environment: where the agent finds its broker. */
export async function resolveAgentConfig(opts: ConnectionFlags, env: NodeJS.ProcessEnv): Promise<{ broker?: BrokerOptions & { deviceId: string }; telemetryInterval?: string }> {
  let file: AgentConfigFile = {};
  // A provisioned board (berth flash) has its broker in /etc/berth/agent.yaml; flags and env still win.
  const configFile = opts.config ?? env.BERTH_CONFIG ?? (fs.existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  if (configFile !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(configFile, 'utf8');
    } catch (err) {
      throw new BerthError('host', `cannot read the agent config ${configFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = await parseYaml(text);
    } catch (err) {
      throw new BerthError('invalid', `agent config ${configFile}: ${(err as Error).message}`, { cause: err });
    }
    if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) throw new BerthError('invalid', `agent config ${configFile}: expected a YAML mapping`);
    file = (parsed ?? {}) as AgentConfigFile;
  }
  const url = opts.broker ?? file.broker ?? env.BERTH_BROKER;
  const telemetryInterval = opts.telemetryInterval ?? file.telemetryInterval;
  if (url === undefined || url === '') return { ...(telemetryInterval !== undefined && { telemetryInterval }) };
  const deviceId = opts.deviceId ?? file.deviceId ?? env.BERTH_DEVICE_ID;
  if (deviceId === undefined || !isValidDeviceId(deviceId)) {
    throw new BerthError('usage', deviceId === undefined ? 'a broker needs --device-id (or deviceId in --config, or BERTH_DEVICE_ID)' : `invalid device id "${deviceId}": use 1–128 of [A-Za-z0-9_.:-]`);
  }
  const password = opts.passwordFile !== undefined ? readSecret(opts.passwordFile) : file.password ?? env.BERTH_MQTT_PASSWORD;
  const username = opts.username ?? file.username ?? (password !== undefined ? deviceId : undefined);
  const ca = opts.ca ?? file.ca;
  const cert = opts.cert ?? file.cert;
  const key = opts.key ?? file.key;
  return {
    broker: {
      url, deviceId, ...(username !== undefined && { username }), ...(password !== undefined && { password }),
      ...(ca !== undefined && { caFile: ca }), ...(cert !== undefined && { certFile: cert }), ...(key !== undefined && { keyFile: key }),
    },
    ...(telemetryInterval !== undefined && { telemetryInterval }),
  };
}

function readSecret(file: string): string {
  return readNamedFile(file, '--password-file').toString('utf8').trim();
}
