import type { AppFile, AppNetwork, AppService, AppVolume, ServiceContext } from '../../src/compose/model.js';
import { checkAppServices, normalizeService } from '../../src/compose/service.js';
import { serviceHashes } from '../../src/compose/service-hash.js';
import { parseDesired } from '../../src/protocol/validate.js';
import { parseYaml } from '../../src/yaml.js';

/**
 * Services of an inline compose snippet through the device's path: the desired schema (as a fleet
 * message), then each service normalized with a ServiceContext the test gives (the app's networks,
 * volumes, configs, secrets, data directory), as normalize.ts builds it from the top-level keys.
 */

export const network = (name: string, app = 'farm'): AppNetwork => ({ name, hostName: `${app}_${name}`, external: false, internal: false, driverOpts: {}, enableIpv6: false, labels: {} });
export const volume = (name: string, driverOpts: Record<string, string> = {}, app = 'farm'): AppVolume => ({ name, hostName: `${app}_${name}`, external: false, driverOpts, labels: {} });
export const file = (name: string, text: string): AppFile => ({ name, content: Buffer.from(text).toString('base64') });

export interface AppParts {
  readonly networks?: readonly AppNetwork[];
  readonly volumes?: readonly AppVolume[];
  readonly configs?: readonly AppFile[];
  readonly secrets?: readonly AppFile[];
  readonly dataDir?: string;
}

/** The `services:` mapping of a YAML snippet, normalized; throws what the schema or the mappers refuse. */
export async function services(yaml: string, parts: AppParts = {}): Promise<Map<string, AppService>> {
  const doc = (await parseYaml(yaml)) as { services: unknown };
  const desired = parseDesired(JSON.stringify({ revision: 1, services: doc.services }));
  const byName = <T extends { name: string }>(xs: readonly T[] | undefined): Map<string, T> => new Map((xs ?? []).map((x) => [x.name, x]));
  const files = { configs: byName(parts.configs), secrets: byName(parts.secrets) };
  const ctx: ServiceContext = {
    app: 'farm', revision: 1, networks: byName(parts.networks), volumes: byName(parts.volumes), ...files,
    dataDir: parts.dataDir ?? '/var/lib/berth/apps/farm', hashes: serviceHashes(desired.services, files),
  };
  const out = new Map(Object.keys(desired.services).sort().map((n) => [n, normalizeService(n, desired.services[n]!, ctx)]));
  checkAppServices(out);
  return out;
}

/** The one service of a snippet. */
export async function service(yaml: string, parts: AppParts = {}): Promise<AppService> {
  const all = await services(yaml, parts);
  return [...all.values()][0]!;
}

/** What a snippet is refused with (its message), or 'accepted'. */
export async function refusal(yaml: string, parts: AppParts = {}): Promise<string> {
  try {
    await services(yaml, parts);
    return 'accepted';
  } catch (err) {
    return (err as Error).message;
  }
}
