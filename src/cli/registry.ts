import { BerthError } from '../errors.js';

/** `--tls-verify`'s value; registry access itself (credentials, CAs) is src/image/registry/open.ts's. */
export function parseBool(value: string, flag: string): boolean {
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new BerthError('usage', `${flag} takes true or false, not "${value}"`);
}
