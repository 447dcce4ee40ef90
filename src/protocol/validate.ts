import { parseDuration } from '../duration.js';
import { BerthError } from '../errors.js';
import validateCommand from '../generated/command.validate.js';
import validateDesired from '../generated/desired.validate.js';
import { parseJson } from '../config/parse.js';
import { validateWith } from '../config/schema.js';
import { parseHealthcheck, serviceRunOptions } from '../agent/compose.js';
import type { CommandRequest, DesiredState, UpdatePolicy } from './types.js';

/**
 * Every message the agent receives passes here before any field is read: a size limit, JSON, the
 * precompiled JSON Schema, then the same semantic checks as `berth run` (sizes, devices, volumes, …).
 * Anything wrong is one `invalid` BerthError with a reason the fleet can show.
 */

/** Well above any real desired state, far below what could hurt a 512 MiB board. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

export const DEFAULT_UPDATE: UpdatePolicy = { strategy: 'download-then-kill', health_window: '30s', on_failure: 'rollback' };

function payloadJson(payload: Uint8Array | string, what: string): unknown {
  const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (bytes > MAX_PAYLOAD_BYTES) throw new BerthError('invalid', `${what} is ${bytes} bytes, over the ${MAX_PAYLOAD_BYTES}-byte limit`);
  if (bytes === 0) throw new BerthError('invalid', `${what} is empty`);
  return parseJson(payload, what);
}

/**
 * The highest revision a desired state may carry (desired.json says the same): 2^31 − 1 leaves the
 * fleet's next revision (+1) exact, and far more deploys than a device will ever see.
 */
export const MAX_REVISION = 2 ** 31 - 1;

/** A desired state checked: valid, or the reason and, when the payload names a usable one, its revision. */
export type DesiredCheck =
  | { readonly ok: true; readonly desired: DesiredState }
  | { readonly ok: false; readonly error: unknown; readonly revision?: number };

/**
 * Checks a desired-state payload, parsing it once. The revision of an invalid one is read from that one
 * parse, and only when the payload was within the size limit and JSON: an oversized payload is refused
 * before any of it is parsed.
 */
export function checkDesired(payload: Uint8Array | string): DesiredCheck {
  let json: unknown;
  try {
    json = payloadJson(payload, 'desired state');
  } catch (error) {
    return { ok: false, error };
  }
  try {
    const desired = validateWith<DesiredState>(validateDesired, json, 'desired state');
    for (const [name, svc] of Object.entries(desired.services)) {
      serviceRunOptions(name, svc, desired.revision);
      parseHealthcheck(name, svc.healthcheck);
    }
    if (desired.update?.health_window !== undefined) parseDuration(desired.update.health_window, 'update.health_window');
    return { ok: true, desired };
  } catch (error) {
    const r = (json as { revision?: unknown } | null)?.revision;
    const usable = typeof r === 'number' && Number.isInteger(r) && r >= 1 && r <= MAX_REVISION;
    return { ok: false, error, ...(usable && { revision: r }) };
  }
}

export function parseDesired(payload: Uint8Array | string): DesiredState {
  const checked = checkDesired(payload);
  if (!checked.ok) throw checked.error;
  return checked.desired;
}

export function updatePolicy(d: DesiredState): UpdatePolicy {
  return { ...DEFAULT_UPDATE, ...d.update };
}

export function parseCommand(payload: Uint8Array | string): CommandRequest {
  return validateWith<CommandRequest>(validateCommand, payloadJson(payload, 'command'), 'command');
}
