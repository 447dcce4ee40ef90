import { BerthError } from '../errors.js';
import type { ErrorObject } from 'ajv';
import validateCommand from '../generated/command.validate.js';
import validateDesired from '../generated/desired.validate.js';
import { parseJson, validateWith } from '../image/validate.js';
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
 * Checks a value against the desired-state schema; errors name the key in compose's dotted form
 * (`services.web.ports: not supported yet`), which is how users write it. `what` starts the message.
 */
export function checkDesiredShape(value: unknown, what: string): DesiredState {
  return validateWith<DesiredState>(validateDesired, value, what, dottedSchemaErrors);
}

/** Keywords that only summarize the errors of their branches; said once the branches said nothing more telling. */
const SUMMARY = new Set(['oneOf', 'anyOf', 'type']);

/**
 * Schema errors as `key.path: problem`, naming the offending key rather than its parent. For a value
 * that fits none of a oneOf's forms, the most telling branch error (a pattern, a range) is kept and
 * the "must be integer … must match exactly one schema" noise dropped.
 */
export function dottedSchemaErrors(errors: readonly ErrorObject[]): string[] {
  const telling = new Set(errors.filter((e) => !SUMMARY.has(e.keyword)).map((e) => e.instancePath));
  const kept = errors.filter((e) => !(SUMMARY.has(e.keyword) && telling.has(e.instancePath)) && e.keyword !== 'oneOf' && e.keyword !== 'anyOf');
  // A value that fits two oneOf forms leaves only the summary: say that rather than nothing.
  return (kept.length > 0 ? kept : errors).map((e) => {
    const at = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    const key = (extra: string[]): string => [...at, ...extra].join('.') || '(top level)';
    if (e.keyword === 'additionalProperties') return `${key([String(e.params.additionalProperty)])}: not supported yet`;
    if (e.keyword === 'required') return `${key([String(e.params.missingProperty)])}: required`;
    return `${key([])}: ${e.message ?? 'is invalid'}`;
  });
}

export function parseCommand(payload: Uint8Array | string): CommandRequest {
  return validateWith<CommandRequest>(validateCommand, payloadJson(payload, 'command'), 'command');
}
