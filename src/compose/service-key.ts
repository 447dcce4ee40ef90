import { BerthError } from '../errors.js';

/**
 * How the service mappers name what they refuse: every error starts with the key's path in the file
 * (`services.frigate.shm_size: …`), whichever parser (`berth run`'s, shared) found the problem.
 */

/** `services.<service>.<key>`. */
export const keyPath = (service: string, key: string): string => `services.${service}.${key}`;

/** Runs `fn`, prefixing a BerthError it throws with `path` (once: a message already naming a `services.` path is kept). */
export function atKey<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BerthError && !err.message.startsWith('services.')) {
      throw new BerthError(err.category, `${path}: ${err.message}`, { cause: err, ...(err.hint !== undefined && { hint: err.hint }) });
    }
    throw err;
  }
}

/** An `invalid` error naming the key. */
export const invalidAt = (path: string, message: string, hint?: string): BerthError => new BerthError('invalid', `${path}: ${message}`, hint === undefined ? undefined : { hint });

/** compose's scalar → string, as compose stringifies label, sysctl and environment values (null → ''). */
export const scalarText = (v: string | number | boolean | null): string => (v === null ? '' : String(v));

/** A `{K: V}` or `["K=V"]` compose value as `K=V` strings. */
export const keyValueList = (v: Readonly<Record<string, string | number | boolean | null>> | readonly string[]): string[] =>
  Array.isArray(v) ? [...(v as readonly string[])] : Object.entries(v as Record<string, string | number | boolean | null>).map(([k, x]) => `${k}=${scalarText(x)}`);
