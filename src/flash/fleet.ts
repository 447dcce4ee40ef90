import fs from 'node:fs';
import path from 'node:path';
import { configError } from '../config/read.js';
import { BerthError, isErrno } from '../errors.js';
import { FLEET_FILE, readFleetFile } from '../fleet/fleet-file.js';
import { normalizeRegistry } from '../image/registry/credentials.js';
import { isValidDeviceId } from '../protocol/topics.js';
import type { DeployPolicy } from '../agent/policy.js';
import { validateWith } from '../config/schema.js';
import validateAgentConfig from '../generated/agent-config.validate.js';
import { checkTransport } from '../protocol/transport.js';
import { FleetPublicKey } from '../protocol/signing.js';

/**
 * A fleet file (FLEET.yaml): what every device of a fleet shares. Relative paths are relative to the
 * fleet file. `credentials` is the directory scripts/provision/device-credentials.sh wrote: per device
 * ID.password, or ID.key + ID.crt (mTLS), and ca.crt.
 *
 *   broker: mqtts://broker.example.com:8883
 *   credentials: devices          # required
 *   ca: fleet-ca/ca.crt           # default: <credentials>/ca.crt when it exists
 *   telemetryInterval: 30s        # optional, passed to the agent
 *   ssh: { authorizedKeys: ~/.ssh/id_ed25519.pub, user: pi }   # optional
 *   userconf: userconf.txt        # optional: Raspberry Pi OS first-boot user ("name:crypted-password")
 *   signingKey: fleet-key.key     # the fleet key (berth fleet keygen): its public half goes on every card
 *   deployPolicy: { devices: [/dev/ttyUSB0] }   # optional: what a remote deploy may ask (agent.yaml deployPolicy)
 *   insecure: true                # optional: allow a plain mqtt:// broker on another machine
 *   registries:                   # optional: private registries the devices pull from
 *     registry.example.com:5000: { ca: registry-ca.crt, username: fleet-pull, passwordFile: pull.password }
 */
export interface Fleet {
  readonly file: string;
  readonly broker: string;
  readonly credentialsDir: string;
  readonly ca?: string;
  readonly telemetryInterval?: string;
  readonly ssh?: { readonly authorizedKeys: string; readonly user: string };
  readonly userconf?: string;
  readonly registries?: readonly FleetRegistry[];
  /** The public half of `signingKey`, for agent.yaml's fleetKey; absent only with allowUnsigned. */
  readonly fleetKey?: FleetPublicKey;
  readonly allowUnsigned?: boolean;
  readonly insecure?: boolean;
  /** agent.yaml's deployPolicy, checked against the agent config's schema. */
  readonly deployPolicy?: Partial<DeployPolicy>;
}

/** A private registry: its CA (Docker's certs.d layout on the board) and a pull login (the board's auth.json). */
export interface FleetRegistry {
  /** host[:port], as image references name it. */
  readonly registry: string;
  readonly ca?: string;
  readonly login?: { readonly username: string; readonly passwordFile: string };
}

/** A device's broker credentials, read from the credentials directory. */
export type DeviceCredentials =
  | { readonly kind: 'password'; readonly password: string }
  | { readonly kind: 'cert'; readonly cert: Buffer; readonly key: Buffer };

/**
 * Reads a fleet file for flashing: the shared reader checks it against the fleet-file schema (shapes
 * and types), this checks what flashing needs from it. Throws BerthError(notFound | invalid) naming
 * the file and the key.
 */
export async function loadFleet(file: string): Promise<Fleet> {
  const d = await readFleetFile(file);
  const bad = (msg: string): BerthError => configError(FLEET_FILE, file, msg);
  const dir = path.dirname(path.resolve(file));
  const rel = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.resolve(dir, p.replace(/^~(?=\/)/, process.env.HOME ?? '~')));
  const broker = d.broker;
  if (broker === undefined) throw bad('broker is required (e.g. mqtts://broker.example.com:8883)');
  // What the agent connects to (src/protocol/connection.ts): a WebSocket URL would fail on the board.
  if (!/^mqtts?:\/\/[^/\s]+/.test(broker)) throw bad(`broker "${broker}" is not an mqtt:// or mqtts:// URL`);
  const credentialsDir = rel(d.credentials);
  if (credentialsDir === undefined) throw bad('credentials is required: the directory scripts/provision/device-credentials.sh wrote');
  let ca = rel(d.ca);
  if (ca === undefined && fs.existsSync(path.join(credentialsDir, 'ca.crt'))) ca = path.join(credentialsDir, 'ca.crt');
  if (ca !== undefined && !fs.existsSync(ca)) throw bad(`ca ${ca} does not exist`);
  let ssh: Fleet['ssh'];
  if (d.ssh !== undefined) {
    const keys = rel(d.ssh.authorizedKeys);
    if (keys === undefined) throw bad('ssh.authorizedKeys is required (a public key file)');
    const user = d.ssh.user ?? 'pi';
    if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw bad(`ssh.user "${user}" is not a valid user name`);
    ssh = { authorizedKeys: keys, user };
  }
  // A bare number is seconds; the agent reads the duration string.
  const telemetryInterval = typeof d.telemetryInterval === 'number' ? `${d.telemetryInterval}s` : d.telemetryInterval;
  const userconf = rel(d.userconf);
  // Shape checked by the schema; here the files, which must exist when flashing starts, not halfway.
  const registries = Object.entries(d.registries ?? {}).map(([key, r]): FleetRegistry => {
    // The spelling the agent looks its CA and login up by (Docker Hub's aliases fold into docker.io).
    const registry = normalizeRegistry(key);
    const regCa = rel(r.ca);
    const passwordFile = rel(r.passwordFile);
    for (const [k, f] of [['ca', regCa], ['passwordFile', passwordFile]] as const) {
      if (f !== undefined && !fs.existsSync(f)) throw bad(`registries.${key}.${k} ${f} does not exist`);
    }
    return { registry, ...(regCa !== undefined && { ca: regCa }), ...(r.username !== undefined && passwordFile !== undefined && { login: { username: r.username, passwordFile } }) };
  });
  // The devices check the same rule; a card that cannot connect is found out here, not on the board.
  try {
    checkTransport(broker, true, d.insecure === true, 'broker');
  } catch (err) {
    throw bad(`${(err as Error).message}; set insecure: true if the network is trusted`);
  }
  const signingKey = rel(d.signingKey);
  if (signingKey === undefined && d.allowUnsigned !== true) throw bad('signingKey is required: devices accept only deploys signed with the fleet key (make one with berth fleet keygen)');
  const fleetKey = signingKey === undefined ? undefined : FleetPublicKey.fromPem(await readFile(signingKey, 'signingKey', bad), `fleet file ${file}: signingKey ${signingKey}`);
  if (d.deployPolicy !== undefined) validateWith(validateAgentConfig, { deployPolicy: d.deployPolicy }, `fleet file ${file}: deployPolicy, as agent.yaml takes it,`);
  return {
    file, broker, credentialsDir,
    ...(fleetKey !== undefined && { fleetKey }), ...(d.allowUnsigned === true && { allowUnsigned: true }), ...(d.insecure === true && { insecure: true }),
    ...(d.deployPolicy !== undefined && { deployPolicy: d.deployPolicy as Partial<DeployPolicy> }),
    ...(ca !== undefined && { ca }), ...(telemetryInterval !== undefined && { telemetryInterval }),
    ...(ssh !== undefined && { ssh }), ...(userconf !== undefined && { userconf }),
    ...(registries.length > 0 && { registries }),
  };
}

async function readFile(file: string, key: string, bad: (msg: string) => BerthError): Promise<Buffer> {
  try {
    return await fs.promises.readFile(file);
  } catch (err) {
    throw bad(`${key} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * The credentials device-credentials.sh made for one device: a certificate pair when ID.crt exists,
 * else ID.password. Throws BerthError(usage) for an invalid id, BerthError(notFound) when there are none.
 */
export function deviceCredentials(fleet: Fleet, id: string): DeviceCredentials {
  if (!isValidDeviceId(id)) throw new BerthError('usage', `invalid device id "${id}": use 1–128 of [A-Za-z0-9_.:-], starting with a letter or digit`);
  const base = path.join(fleet.credentialsDir, id);
  const read = (f: string): Buffer | undefined => {
    try {
      return fs.readFileSync(f);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw new BerthError('host', `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  };
  const cert = read(`${base}.crt`);
  if (cert !== undefined) {
    const key = read(`${base}.key`);
    if (key === undefined) throw new BerthError('notFound', `${base}.crt has no matching ${base}.key`);
    return { kind: 'cert', cert, key };
  }
  const password = read(`${base}.password`)?.toString('utf8').trim();
  if (password === undefined || password === '') {
    throw new BerthError('notFound', `no credentials for device "${id}" in ${fleet.credentialsDir} (expected ${id}.password or ${id}.crt + ${id}.key)`, {
      hint: `make them: scripts/provision/device-credentials.sh --out ${fleet.credentialsDir} ${id.includes(':') ? '--cert ' : ''}${id}`,
    });
  }
  return { kind: 'password', password };
}

/**
 * Device ids from a CSV file: the first column of each row; blank lines and lines starting with '#'
 * are skipped, as is a header row whose first cell is id/deviceId/device_id/device. Ids are checked
 * (isValidDeviceId) and must be unique. Throws BerthError(invalid) naming the line.
 */
export function parseDeviceCsv(text: string, file = 'CSV'): string[] {
  const ids: string[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const cell = line.split(',')[0]!.trim().replace(/^"(.*)"$/, '$1');
    if (ids.length === 0 && seen.size === 0 && /^(id|device|deviceid|device_id|device-id)$/i.test(cell)) continue;
    if (!isValidDeviceId(cell)) throw new BerthError('invalid', `${file}:${i + 1}: invalid device id "${cell}": use 1–128 of [A-Za-z0-9_.:-], starting with a letter or digit`);
    const prev = seen.get(cell);
    if (prev !== undefined) throw new BerthError('invalid', `${file}:${i + 1}: device id "${cell}" already on line ${prev}`);
    seen.set(cell, i + 1);
    ids.push(cell);
  }
  if (ids.length === 0) throw new BerthError('invalid', `${file} lists no device ids`);
  return ids;
}
