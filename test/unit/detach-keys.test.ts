import { describe, expect, it } from 'vitest';
import { DetachMatcher, parseDetachKeys } from '../../src/cli/detach-keys.js';
import { parseCriLine } from '../../src/runtime/logs.js';

describe('detach keys', () => {
  it('parses docker\'s syntax: ctrl-X and single characters, comma-separated', () => {
    expect([...parseDetachKeys('ctrl-p,ctrl-q')]).toEqual([16, 17]);
    expect([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_')]).toEqual([0, 27, 28, 29, 30, 31]);
    expect([...parseDetachKeys('ctrl-x,x,ctrl-A')]).toEqual([24, 120, 1]);
  });

  it('refuses a bad key, naming the flag and the key', () => {
    expect(() => parseDetachKeys('ctrl-1')).toThrow('--detach-keys: invalid key "ctrl-1"');
    expect(() => parseDetachKeys('ab')).toThrow('invalid key "ab"');
    expect(() => parseDetachKeys('ctrl-p,')).toThrow('invalid key ""');
  });

  const feed = (m: DetachMatcher, s: string) => {
    const r = m.feed(Buffer.from(s, 'latin1'));
    return { forward: r.forward.toString('latin1'), detach: r.detach };
  };

  it('holds the keys back until the sequence completes, also across reads', () => {
    const m = new DetachMatcher(parseDetachKeys('ctrl-p,ctrl-q'));
    expect(feed(m, 'ls\r\x10')).toEqual({ forward: 'ls\r', detach: false });
    expect(feed(m, '\x11after')).toEqual({ forward: '', detach: true });
  });

  it('passes a broken sequence through in order; a key may start the next try', () => {
    const m = new DetachMatcher(parseDetachKeys('ctrl-p,ctrl-q'));
    expect(feed(m, '\x10a')).toEqual({ forward: '\x10a', detach: false });
    expect(feed(m, '\x10\x10\x11')).toEqual({ forward: '\x10', detach: true });
    const one = new DetachMatcher(parseDetachKeys('x'));
    expect(feed(one, 'abxc')).toEqual({ forward: 'ab', detach: true });
  });
});

describe('CRI log lines of a terminal', () => {
  it('keep the carriage return a terminal puts before the newline', () => {
    expect(parseCriLine('2026-12-05T23:41:50.319035322Z stdout F /dev/pts/0\r')).toEqual({ time: '2026-12-05T23:41:50.319035322Z', stream: 'stdout', complete: true, text: '/dev/pts/0\r' });
  });
});
