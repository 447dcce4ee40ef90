import crypto from 'node:crypto';
import type { FleetSigningKey } from '../protocol/signing.js';
import { DeviceTopics } from '../protocol/topics.js';
import type { CommandRequest, CommandResult } from '../protocol/types.js';
import { parseCommand } from '../protocol/validate.js';
import { BerthError, ERROR_CATEGORIES, type ErrorCategory } from '../errors.js';
import type { FleetLink } from './link.js';

/**
 * Sends one command to a device, signed, and waits for its result. The request is checked against the same
 * schema the agent uses, so a bad one fails here. Commands are never retained; an offline device's
 * persistent session keeps the command queued at the broker and runs it when it returns, after this
 * call has given up (`network` error on timeout).
 */
export async function sendCommand(link: FleetLink, device: string, request: CommandRequest, timeoutMs: number, signer: FleetSigningKey, id = newCommandId()): Promise<CommandResult> {
  const topics = new DeviceTopics(device);
  parseCommand(JSON.stringify(request));
  let unsubscribe = (): void => undefined;
  let timer: NodeJS.Timeout | undefined;
  const answered = new Promise<CommandResult>((resolve, reject) => {
    unsubscribe = link.onChange((c) => {
      if (c.kind === 'result' && c.device === device && c.result.id === id) resolve(c.result);
    });
    timer = setTimeout(() => reject(new BerthError('network', `${device} did not answer within ${timeoutMs / 1000} s`, {
      hint: 'an offline device runs the command when it reconnects (its session keeps it); see berth fleet status',
    })), timeoutMs);
  });
  try {
    await link.client.subscribeAsync(topics.commandResult(id), { qos: 1 });
    // Signed for this device and command id, with the time it was issued: the device runs it once.
    const payload = signer.sign({ kind: 'cmd', device, id, issued: new Date().toISOString() }, JSON.stringify(request));
    await link.publish(`${topics.base}/cmd/${id}`, payload, { qos: 1 });
    return await answered;
  } finally {
    if (timer) clearTimeout(timer);
    unsubscribe();
    await link.client.unsubscribeAsync(topics.commandResult(id)).catch(() => undefined);
  }
}

/** A fresh command id (`f-` and 12 hex digits): a caller that must listen before sending (a log follow's lines) makes it first. */
export function newCommandId(): string {
  return `f-${crypto.randomBytes(6).toString('hex')}`;
}

/** The error category a failed result's code stands for (the first category with that code). */
export function resultCategory(r: CommandResult): ErrorCategory | undefined {
  if (r.status === 'ok') return undefined;
  if (r.status === 'rejected') return r.result === ERROR_CATEGORIES.auth.result ? 'auth' : 'invalid';
  const found = (Object.entries(ERROR_CATEGORIES) as Array<[ErrorCategory, { result: number }]>).find(([, v]) => v.result === r.result);
  return found?.[0] ?? 'internal';
}
