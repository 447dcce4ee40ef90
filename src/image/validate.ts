import type { ErrorObject } from 'ajv';
import { BerthError } from '../errors.js';

type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

const pointerErrors = (errors: readonly ErrorObject[]): string[] => errors.map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);

/**
 * Runs a precompiled validator and turns its errors into one readable `invalid` error; `describe`
 * words the errors (default: JSON pointer and ajv's message each). Repeated lines show once.
 */
export function validateWith<T>(validator: unknown, data: unknown, what: string, describe: (errors: readonly ErrorObject[]) => string[] = pointerErrors): T {
  const v = validator as Validator;
  if (!v(data)) {
    const detail = [...new Set(describe(v.errors ?? []))].slice(0, 5).join('; ');
    throw new BerthError('invalid', `${what} is invalid: ${detail}`);
  }
  return data as T;
}

/** JSON.parse with a categorized error. */
export function parseJson(bytes: Uint8Array | string, what: string): unknown {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new BerthError('invalid', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}
