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

export function parseDesired(payload: Uint8Array | string): DesiredState {
  const desired = validateWith<DesiredState>(validateDesired, payloadJson(payload, 'desired state'), 'desired state');
  for (const [name, svc] of Object.entries(desired.services)) {
    serviceRunOptions(name, svc, desired.revision);
    parseHealthcheck(name, svc.healthcheck);
  }
  if (desired.update?.health_window !== undefined) parseDuration(desired.update.health_window, 'update.health_window');
  return desired;
}

export function updatePolicy(d: DesiredState): UpdatePolicy {
  return { ...DEFAULT_UPDATE, ...d.update };
}

export function parseCommand(payload: Uint8Array | string): CommandRequest {
  return validateWith<CommandRequest>(validateCommand, payloadJson(payload, 'command'), 'command');
}
