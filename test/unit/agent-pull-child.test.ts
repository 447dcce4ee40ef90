import { describe, expect, it } from 'vitest';
import { decodeError, encodeError } from '../../src/agent/pull-child/protocol.js';
import { BerthError, ERROR_CATEGORIES, type ErrorCategory } from '../../src/errors.js';

// A pull in the agent's child process (src/agent/pull-child) fails the deploy as an in-process pull
// would: the same category, hence the same MQTT result code, message and hint.
describe('pull child protocol: errors across the process boundary', () => {
  it('keeps every category, its result code, the message and the hint', () => {
    for (const category of Object.keys(ERROR_CATEGORIES) as ErrorCategory[]) {
      const sent = new BerthError(category, `pull of x:1 failed (${category})`, { hint: 'try again' });
      // Through JSON, as Node's IPC channel carries it.
      const got = decodeError(JSON.parse(JSON.stringify(encodeError(sent))));
      expect(got).toBeInstanceOf(BerthError);
      expect({ category: got.category, result: got.resultCode, message: got.message, hint: got.hint }).toEqual({ category, result: sent.resultCode, message: sent.message, hint: 'try again' });
    }
  });

  it('an error without a hint has none; an unknown category is internal, never trusted as a code', () => {
    expect(decodeError(encodeError(new BerthError('network', 'registry unreachable'))).hint).toBeUndefined();
    expect(JSON.stringify(encodeError(new BerthError('network', 'registry unreachable')))).not.toContain('hint');
    const odd = decodeError({ category: 'toString' as ErrorCategory, message: 'm' });
    expect(odd.category).toBe('internal');
    expect(odd.resultCode).toBe(500);
  });
});
