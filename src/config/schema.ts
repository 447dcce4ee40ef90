import type { ErrorObject } from 'ajv';
import { BerthError } from '../errors.js';

/**
 * The one place ajv's errors become words. Every schema check in berth (config files, registry
 * manifests, MQTT messages) runs a validator precompiled by scripts/gen-validators.mjs through
 * validateWith, so a violation always reads `<what> is invalid: <key path>: <problem>`, e.g.
 * `fleet file fleet.yaml is invalid: devices.pi-001.groups: must be array`.
 */

/** A validator module from src/generated (ajv standalone code): a predicate that leaves its errors on itself. */
export type SchemaValidator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** At most this many problems per message: the first few say what to fix, the rest is noise. */
const MAX_REPORTED = 5;

/**
 * Says why a key the schema does not allow is refused, when plain "unknown key" is not the best word:
 * `parent` is the key path of the mapping holding it ('' for the top level). Undefined keeps "unknown
 * key". The compose reader says so for keys of the compose specification berth does not support.
 */
export type UnknownKeyWording = (parent: string, key: string) => string | undefined;

/** Runs a precompiled validator; BerthError('invalid') naming each problem's key path when the data fails. */
export function validateWith<T>(validator: unknown, data: unknown, what: string, unknownKey?: UnknownKeyWording): T {
  const v = validator as SchemaValidator;
  if (!v(data)) throw new BerthError('invalid', `${what} is invalid: ${describeSchemaErrors(v.errors ?? [], unknownKey)}`);
  return data as T;
}

/**
 * `key.path: problem; …` for ajv's errors, with anyOf/oneOf noise folded (see foldAlternatives). A key
 * the schema does not allow is named in the path itself (`services.web.ports: unknown key`), so the
 * message reads like every other one and the path can be pasted into a search of the file.
 */
export function describeSchemaErrors(errors: readonly ErrorObject[], unknownKey?: UnknownKeyWording): string {
  const lines = foldAlternatives(errors).map((e) => {
    if (e.keyword !== 'additionalProperties') return `${keyPath(e)}: ${problem(e)}`;
    const parent = pathOf(e.instancePath);
    const key = String((e.params as { additionalProperty: unknown }).additionalProperty);
    return `${parent === '' ? key : `${parent}.${key}`}: ${unknownKey?.(parent, key) ?? 'unknown key'}`;
  });
  return [...new Set(lines)].slice(0, MAX_REPORTED).join('; ') || 'does not match its schema';
}

/** `/devices/pi-001/groups/0` → `devices.pi-001.groups[0]`; the document itself is "top level". */
export function keyPath(e: ErrorObject): string {
  return pathOf(e.instancePath) || 'top level';
}

/** A JSON pointer as a key path ('' for the document itself). */
function pathOf(pointer: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc === '' ? p : `${acc}.${p}`), '');
}

function problem(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'required':
      return `missing required key "${String(p.missingProperty)}"`;
    default:
      // propertyNames: ajv puts the offending key beside the error, not in the path.
      return 'propertyName' in e ? `key "${String((e as { propertyName: unknown }).propertyName)}" ${e.message ?? 'is invalid'}` : e.message ?? 'is invalid';
  }
}

/**
 * With allErrors, a failed anyOf/oneOf reports every branch: `devices.pi-1: must be null` beside the
 * real problem inside the object branch. A branch whose type did not even match the value is dropped
 * when another branch did match it; when none matched, the branches become one `must be null or
 * object`. The summary error ("must match a schema in anyOf") goes whenever a more precise one is
 * left. propertyNames' summary ("property name must be valid") goes too: its detail names the key.
 */
function foldAlternatives(errors: readonly ErrorObject[]): ErrorObject[] {
  let out = errors.filter((e) => e.keyword !== 'propertyNames' || !errors.some((d) => d !== e && 'propertyName' in d && d.instancePath === e.instancePath));
  for (const alt of errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf')) {
    const prefix = `${alt.schemaPath}/`;
    const branchOf = (e: ErrorObject): string | undefined => (e.schemaPath.startsWith(prefix) ? e.schemaPath.slice(prefix.length).split('/')[0] : undefined);
    const typeMiss = out.filter((e) => e.keyword === 'type' && e.instancePath === alt.instancePath && e.schemaPath === `${prefix}${branchOf(e)}/type`);
    const missed = new Set(typeMiss.map(branchOf));
    const branches = new Set(out.map(branchOf).filter((b) => b !== undefined));
    if (branches.size > 0 && [...branches].every((b) => missed.has(b))) {
      const types = typeMiss.map((e) => String((e.params as { type: unknown }).type)).join(' or ');
      out = out.filter((e) => branchOf(e) === undefined).map((e) => (e === alt ? { ...alt, keyword: 'type', message: `must be ${types}` } : e));
      continue;
    }
    out = out.filter((e) => !missed.has(branchOf(e)));
    // A branch behind a $ref reports under the definition's schemaPath, not the branch's: when some
    // branch got past the type check (an error lies deeper), a type error right here is such noise.
    const deeper = out.some((e) => e.instancePath.startsWith(`${alt.instancePath}/`));
    if (deeper) out = out.filter((e) => !(e.keyword === 'type' && e.instancePath === alt.instancePath));
    const precise = out.some((e) => e !== alt && (e.instancePath === alt.instancePath || e.instancePath.startsWith(`${alt.instancePath}/`)));
    if (precise) out = out.filter((e) => e !== alt);
  }
  return out;
}
