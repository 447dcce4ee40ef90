import fs from 'node:fs';
import { BerthError } from '../errors.js';
import { readNamedFile } from '../host/read.js';
import path from 'node:path';
import { checkTransport } from '../protocol/transport.js';
import { FleetSigningKey } from '../protocol/signing.js';
import { readFleetFile, type FleetFile } from './fleet-file.js';
import { Inventory } from './inventory.js';
import { FleetLink, type DeviceKind, type FleetBrokerOptions } from './link.js';
import { FleetView } from './view.js';

/** Connection flags shared by every `berth fleet` command (the CLI parses them). */
export interface FleetFlags {
  readonly broker?: string;
  readonly username?: string;
  readonly passwordFile?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly fleetFile?: string;
  readonly share?: string;
  /** The private key to sign with (PEM); else BERTH_SIGNING_KEY, else the fleet file's signingKey. */
  readonly signingKey?: string;
  /** Accept plain mqtt:// with a password to another machine. */
  readonly insecure?: boolean;
}

export interface FleetSession {
  readonly link: FleetLink;
  readonly view: FleetView;
  readonly inventory: Inventory;
  close(): Promise<void>;
}

const DEFAULT_FLEET_FILE = 'fleet.yaml';

/** Flags, then the environment (BERTH_BROKER, BERTH_MQTT_PASSWORD, BERTH_FLEET_FILE); the transport rule checked. */
export function brokerOptions(flags: FleetFlags, env: NodeJS.ProcessEnv, fleetFile: FleetFile = {}): FleetBrokerOptions {
  const url = flags.broker ?? env.BERTH_BROKER;
  if (url === undefined || url === '') throw new BerthError('usage', 'berth fleet needs --broker mqtt://HOST:PORT (or env BERTH_BROKER)');
  let password = env.BERTH_MQTT_PASSWORD;
  if (flags.passwordFile !== undefined) password = readNamedFile(flags.passwordFile, 'the password file').toString('utf8').trim();
  checkTransport(url, (password !== undefined && password !== '') || flags.cert !== undefined, flags.insecure === true || fleetFile.insecure === true);
  return {
    url,
    ...(flags.username !== undefined && { username: flags.username }),
    ...(password !== undefined && password !== '' && { password }),
    ...(flags.ca !== undefined && { caFile: flags.ca }),
    ...(flags.cert !== undefined && { certFile: flags.cert }),
    ...(flags.key !== undefined && { keyFile: flags.key }),
    ...(flags.share !== undefined && { shareGroup: flags.share }),
  };
}

/** The fleet file: --fleet-file, else BERTH_FLEET_FILE, else ./fleet.yaml when present, else none. */
export async function loadFleetFile(flags: FleetFlags, env: NodeJS.ProcessEnv): Promise<FleetFile> {
  const file = fleetFilePath(flags, env);
  return file === undefined ? {} : readFleetFile(file);
}

function fleetFilePath(flags: FleetFlags, env: NodeJS.ProcessEnv): string | undefined {
  const file = flags.fleetFile ?? env.BERTH_FLEET_FILE ?? (fs.existsSync(DEFAULT_FLEET_FILE) ? DEFAULT_FLEET_FILE : undefined);
  return file === '' ? undefined : file;
}

/**
 * The fleet's signing key: --signing-key, else BERTH_SIGNING_KEY, else the fleet file's signingKey
 * (relative to the fleet file). Every desired state and command berth fleet sends is signed with it.
 */
export async function loadSigningKey(flags: FleetFlags, env: NodeJS.ProcessEnv): Promise<FleetSigningKey> {
  let file = flags.signingKey ?? (env.BERTH_SIGNING_KEY || undefined);
  if (file === undefined) {
    const fleetFile = fleetFilePath(flags, env);
    const key = fleetFile === undefined ? undefined : (await readFleetFile(fleetFile)).signingKey;
    if (key !== undefined) file = path.resolve(path.dirname(fleetFile!), key);
  }
  if (file === undefined) {
    throw new BerthError('usage', 'berth fleet signs what it sends: give --signing-key FILE (or env BERTH_SIGNING_KEY, or signingKey in the fleet file)', {
      hint: 'make the fleet key once with berth fleet keygen; berth flash puts its public half on every card',
    });
  }
  return FleetSigningKey.fromPem(readNamedFile(file, 'the signing key'), file);
}

/**
 * Connects, subscribes to the retained kinds of every device or of `devices` (and `live` kinds,
 * through the share group if one is set), and waits until the broker has delivered the retained messages: then `view` holds every
 * device's last status, reported and desired.
 */
export async function openFleet(
  flags: FleetFlags, env: NodeJS.ProcessEnv, live: readonly DeviceKind[] = [], results = false, devices?: readonly string[],
): Promise<FleetSession> {
  const fleetFile = await loadFleetFile(flags, env);
  const link = await FleetLink.connect(brokerOptions(flags, env, fleetFile));
  const view = new FleetView();
  link.onChange((c) => view.apply(c, Date.now()));
  try {
    // Only these devices' topics when the caller names them (a command to one device of thousands).
    await link.subscribe(['status', 'reported', 'desired'], devices ? { devices } : {});
    if (live.length > 0 || results) await link.subscribe(live, { shared: true, results });
    await link.sync();
  } catch (err) {
    await link.close();
    throw err;
  }
  return { link, view, inventory: new Inventory(fleetFile, view), close: () => link.close() };
}
