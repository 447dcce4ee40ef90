import { BerthError } from '../errors.js';
import validateCommand from '../generated/command.validate.js';
import validateDesired from '../generated/desired.validate.js';
import validateSigned from '../generated/signed.validate.js';
import { parseJson } from '../config/parse.js';
import { validateWith } from '../config/schema.js';
import { composeKeyWording } from './compose-keys.js';
import type { Envelope } from './signing.js';
import type { CommandRequest, DesiredState } from './types.js';

/**
 * Every message the agent receives passes here before any field is read: a size limit, JSON, the
 * precompiled JSON Schema. Anything wrong is one `invalid` BerthError with a reason the fleet can show.
 * This stage checks shapes only: what the values mean (sizes, devices, volumes, healthchecks …) is the
 * compose stage's business (src/compose/normalize.ts), which calls in here, never the reverse.
 */

/** Well above any real desired state, far below what could hurt a 512 MiB board. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

function payloadJson(payload: Uint8Array | string, what: string): unknown {
  const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (bytes > MAX_PAYLOAD_BYTES) throw new BerthError('invalid', `${what} is ${bytes} bytes, over the ${MAX_PAYLOAD_BYTES}-byte limit`);
  if (bytes === 0) throw new BerthError('invalid', `${what} is empty`);
  return parseJson(payload, what);
}

/** A desired state's shape (JSON Schema) checked; its values are normalized by src/compose/. */
export function parseDesired(payload: Uint8Array | string): DesiredState {
  return checkDesiredShape(payloadJson(payload, 'desired state'), 'desired state');
}

/**
 * The highest revision a desired state may carry (desired.json says the same): 2^31 − 1 leaves the
 * fleet's next revision (+1) exact, and far more deploys than a device will ever see.
 */
export const MAX_REVISION = 2 ** 31 - 1;

/** A desired state checked: valid, or the reason and, when the payload names a usable one, its revision. */
export type DesiredCheck<T> =
  | { readonly ok: true; readonly desired: T }
  | { readonly ok: false; readonly error: unknown; readonly revision?: number };

/**
 * Checks a desired-state payload, parsing it once, and hands the valid shape to `normalize` (the compose
 * stage's, which may refuse values too). The revision of an invalid one is read from that one parse,
 * and only when the payload was within the size limit and JSON: an oversized payload is refused before
 * any of it is parsed.
 */
export function checkDesired<T>(payload: Uint8Array | string, normalize: (d: DesiredState) => T): DesiredCheck<T> {
  let json: unknown;
  try {
    json = payloadJson(payload, 'desired state');
  } catch (error) {
    return { ok: false, error };
  }
  return checkDesiredValue(json, normalize);
}

/** {@link checkDesired} of a payload already parsed (an unsigned one that {@link openMessage} read). */
export function checkDesiredValue<T>(json: unknown, normalize: (d: DesiredState) => T): DesiredCheck<T> {
  try {
    return { ok: true, desired: normalize(checkDesiredShape(json, 'desired state')) };
  } catch (error) {
    const r = (json as { revision?: unknown } | null)?.revision;
    const usable = typeof r === 'number' && Number.isInteger(r) && r >= 1 && r <= MAX_REVISION;
    return { ok: false, error, ...(usable && { revision: r }) };
  }
}

/**
 * Checks a value against the desired-state schema; errors name the key path (config/schema.ts, the one
 * place ajv's errors become words), and a refused key of the compose specification is said to be
 * unsupported rather than unknown (compose-keys.ts). `what` starts the message.
 */
export function checkDesiredShape(value: unknown, what: string): DesiredState {
  return validateWith<DesiredState>(validateDesired, value, what, composeKeyWording);
}

export function parseCommand(payload: Uint8Array | string): CommandRequest {
  return checkCommandValue(payloadJson(payload, 'command'));
}

/** A command's shape (command.json) checked, of a payload already parsed. */
export function checkCommandValue(json: unknown): CommandRequest {
  return validateWith<CommandRequest>(validateCommand, json, 'command');
}

/**
 * A fleet message (desired state or command) read once: within the size limit, JSON, and either a
 * signed envelope (an object with `sig`: its shape checked against signed.json, not yet verified) or
 * a plain, unsigned message for the caller to refuse or, where unsigned ones are allowed, to check.
 */
export function openMessage(payload: Uint8Array | string, what: 'desired state' | 'command'): { readonly envelope: Envelope } | { readonly plain: unknown } {
  const json = payloadJson(payload, what);
  if (typeof json === 'object' && json !== null && !Array.isArray(json) && 'sig' in json) return { envelope: validateWith<Envelope>(validateSigned, json, `signed ${what}`) };
  return { plain: json };
}
