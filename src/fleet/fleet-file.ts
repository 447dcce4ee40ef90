import { readConfig } from '../config/read.js';
import validateFleetFile from '../generated/fleet-file.validate.js';

/**
 * The fleet file (fleet.yaml; schema: src/config/schemas/fleet-file.json): one file serves both
 * tools. berth fleet reads `devices` and `groups` (src/fleet/inventory.ts); berth flash reads the
 * provisioning keys and checks what they mean (src/flash/fleet.ts loadFleet).
 */
export interface FleetFile {
  readonly devices?: Readonly<Record<string, { readonly groups?: readonly string[]; readonly labels?: Readonly<Record<string, string>> } | null>>;
  /** Groups listed by member, in addition to each device's own `groups`. */
  readonly groups?: Readonly<Record<string, readonly string[]>>;
  readonly broker?: string;
  readonly credentials?: string;
  readonly ca?: string;
  /** A duration, or a number of seconds. */
  readonly telemetryInterval?: string | number;
  readonly ssh?: { readonly authorizedKeys?: string; readonly user?: string };
  readonly userconf?: string;
  /** The fleet's private signing key (PEM), relative to the fleet file. */
  readonly signingKey?: string;
  readonly insecure?: boolean;
  readonly allowUnsigned?: boolean;
  /** agent.yaml's deployPolicy for every device (checked by the agent config's schema). */
  readonly deployPolicy?: Readonly<Record<string, unknown>>;
  /** host[:port] → its CA and pull login (username and passwordFile come together). */
  readonly registries?: Readonly<Record<string, { readonly ca?: string; readonly username?: string; readonly passwordFile?: string }>>;
}

/** What every fleet-file message calls it. */
export const FLEET_FILE = { what: 'fleet file', validate: validateFleetFile } as const;

/** Reads and schema-checks a fleet file; BerthError(notFound | invalid) as for every config file (src/config/read.ts). */
export function readFleetFile(file: string): Promise<FleetFile> {
  return readConfig<FleetFile>(file, FLEET_FILE);
}
