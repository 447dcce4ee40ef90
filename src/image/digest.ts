import crypto from 'node:crypto';
import { BerthError } from '../errors.js';
import { isValidDigest } from './reference.js';

export type Algorithm = 'sha256' | 'sha512';

export function parseDigest(digest: string): { algorithm: Algorithm; hex: string } {
  if (!isValidDigest(digest)) throw new BerthError('invalid', `invalid digest "${digest}"`);
  const [algorithm, hex] = digest.split(':') as [Algorithm, string];
  return { algorithm, hex };
}

export function digestOf(data: Uint8Array, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${crypto.createHash(algorithm).update(data).digest('hex')}`;
}

/** Fails with `invalid` when bytes do not match the digest and size they were fetched for. */
export function verifyBytes(data: Uint8Array, expected: string, size: number | undefined, what: string): void {
  if (size !== undefined && data.length !== size) {
    throw new BerthError('invalid', `${what}: expected ${size} bytes, got ${data.length}`);
  }
  const actual = digestOf(data, parseDigest(expected).algorithm);
  if (actual !== expected) throw new BerthError('invalid', `${what}: digest mismatch (expected ${expected}, got ${actual})`);
}
