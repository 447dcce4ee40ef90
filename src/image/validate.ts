import type { ErrorObject } from 'ajv';
import { BerthError } from '../errors.js';

type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** Runs a precompiled validator and turns its errors into one readable `invalid` error. */
export function validateWith<T>(validator: unknown, data: unknown, what: string): T {
  const v = validator as Validator;
  if (!v(data)) {
    const detail = (v.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`).join('; ');
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
