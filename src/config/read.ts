import fs from 'node:fs';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { parseJson, parseYamlText } from './parse.js';
import { validateWith } from './schema.js';

/**
 * The one reader for berth's config files: agent.yaml, the fleet file, board profiles (and compose
 * files, through readConfigDocument in src/compose/file.ts). Each kind of failure has one category, whichever file
 * it is (docs/errors.md, "Config files"):
 *
 *   the file is missing or cannot be read      notFound (exit 4)  `cannot read the fleet file F: ENOENT`
 *   not valid YAML/JSON                        invalid  (exit 3)  `fleet file F is not valid YAML (line 3, column 5): …`
 *   fails its schema                           invalid  (exit 3)  `fleet file F is invalid: devices.pi-1.groups: must be array`
 *   fails a rule the caller checks after       invalid  (exit 3)  configError(): `fleet file F: broker is required`
 *
 * Format by extension: `.json` is parsed as strict JSON (exact error positions); anything else as
 * YAML 1.2, which also accepts JSON. An empty document (empty file, only comments) reads as `{}`, so
 * "no settings" is valid wherever the schema allows it and "missing required key" where it does not.
 */

/** Which file and which schema; `what` names the file in every message ("fleet file", "agent config"). */
export interface ConfigSpec {
  readonly what: string;
  /** Precompiled from the file's JSON Schema (scripts/gen-validators.mjs → src/generated). */
  readonly validate: unknown;
}

/** Reads, parses and schema-checks a YAML or JSON config file. Throws BerthError(notFound | invalid). */
export async function readConfig<T>(file: string, spec: ConfigSpec): Promise<T> {
  return validateWith<T>(spec.validate, (await readConfigDocument(file, spec.what)) ?? {}, `${spec.what} ${file}`);
}

/**
 * Only the reading and parsing half, for a file whose schema applies to something built from it: a
 * compose file's services are checked as the desired state they become (protocol/schemas/desired.json).
 * Same categories and messages as readConfig; an empty document is null here, for the caller to judge.
 */
export async function readConfigDocument(file: string, what: string): Promise<unknown> {
  const text = readText(file, what);
  const label = `${what} ${file}`;
  return isJson(file) ? parseJson(text, label) : parseYamlText(text, label);
}

/**
 * readConfig for JSON files, synchronously: board profiles are loaded on paths (board detection)
 * that are synchronous and must not load the YAML parser. Refuses any other extension.
 */
export function readJsonConfigSync<T>(file: string, spec: ConfigSpec): T {
  if (!isJson(file)) throw new BerthError('internal', `readJsonConfigSync: ${file} is not a .json file`);
  const label = `${spec.what} ${file}`;
  return validateWith<T>(spec.validate, parseJson(readText(file, spec.what), label) ?? {}, label);
}

/** A rule the schema cannot express was broken: the same category as a schema violation. */
export function configError(spec: ConfigSpec, file: string, message: string, hint?: string): BerthError {
  return new BerthError('invalid', `${spec.what} ${file}: ${message}`, hint === undefined ? undefined : { hint });
}

/** A config file's text; missing or unreadable is notFound naming it (and the errno). */
export function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    // Missing, a directory, no permission: either way there is no config to read; the errno says which.
    throw new BerthError('notFound', `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

function isJson(file: string): boolean {
  return path.extname(file).toLowerCase() === '.json';
}
