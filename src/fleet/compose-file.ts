import fs from 'node:fs';
import { BerthError } from '../errors.js';
import type { DesiredState } from '../protocol/types.js';
import { parseDesired } from '../protocol/validate.js';
import { parseYaml } from '../yaml.js';

/** A compose file's deployable part: what `desired` carries apart from its revision. */
export interface ComposeDeployment {
  readonly services: Record<string, unknown>;
  readonly update?: unknown;
}

/**
 * Reads a compose file (services subset, `x-berth: {update}`) as `berth deploy` and `berth fleet
 * deploy` accept it. Throws `notFound` for a missing file and `invalid` for anything it cannot deploy;
 * the services themselves are checked by `desiredFor`.
 */
export async function readComposeFile(file: string): Promise<ComposeDeployment> {
  let doc: unknown;
  try {
    doc = await parseYaml(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BerthError((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'notFound' : 'invalid', `${file}: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new BerthError('invalid', `${file}: expected a compose mapping with services:`);
  const { services, 'x-berth': xBerth, version: _version, name: _name, ...rest } = doc as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new BerthError('invalid', `${file}: berth deploys services only; unsupported top-level keys: ${unknown.join(', ')}`);
  const update = (xBerth as { update?: unknown } | undefined)?.update;
  return { services: (services ?? {}) as Record<string, unknown>, ...(update !== undefined && { update }) };
}

/** The desired state for `revision`, validated exactly as the agent will validate it. */
export function desiredFor(deployment: ComposeDeployment, revision: number): DesiredState {
  return parseDesired(JSON.stringify({ revision, ...deployment }));
}
