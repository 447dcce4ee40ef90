import { BerthError } from '../errors.js';

/** docker's default: ctrl-p then ctrl-q leaves the terminal, the container carries on. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/**
 * docker's `--detach-keys` syntax: comma-separated keys, each a single character or `ctrl-X` with X one
 * of a–z, @, [, \, ], ^, _ (the control codes 0–31). Bad input: `invalid`, naming the flag and the key.
 */
export function parseDetachKeys(spec: string): Uint8Array {
  const keys = spec.split(',').map((k) => {
    const ctrl = /^ctrl-(.)$/i.exec(k);
    if (ctrl) {
      const c = ctrl[1]!.toLowerCase();
      if (/[a-z]/.test(c)) return c.charCodeAt(0) - 96;
      const code = '@[\\]^_'.indexOf(c);
      if (code >= 0) return code === 0 ? 0 : 26 + code;
    } else if (k.length === 1 && k.charCodeAt(0) < 128) {
      return k.charCodeAt(0);
    }
    throw new BerthError('invalid', `--detach-keys: invalid key "${k}"`, { hint: 'keys are a single character or ctrl-a … ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_, comma-separated (default ctrl-p,ctrl-q)' });
  });
  return Uint8Array.from(keys);
}

/**
 * Finds the detach sequence in what is typed. Keys that start the sequence are held back until it is
 * complete (detach: they never reach the container) or broken (then they go through, in order).
 */
export class DetachMatcher {
  private matched = 0;

  constructor(private readonly keys: Uint8Array) {}

  /** The bytes to pass on, and whether the sequence completed (what followed it is dropped). */
  feed(chunk: Uint8Array): { readonly forward: Buffer; readonly detach: boolean } {
    const out: number[] = [];
    for (const b of chunk) {
      if (this.keys.length > 0 && b === this.keys[this.matched]) {
        if (++this.matched === this.keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      // A broken sequence: the held keys were typing after all; this byte may start a new one.
      for (let i = 0; i < this.matched; i++) out.push(this.keys[i]!);
      this.matched = b === this.keys[0] ? 1 : 0;
      if (this.matched === 0) out.push(b);
    }
    return { forward: Buffer.from(out), detach: false };
  }
}
