import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SPOOL_MAX_BYTES, Spool, SPOOL_DROPPED_KEY } from '../../src/agent/spool.js';
import { BerthError } from '../../src/errors.js';
import { SpoolTable } from '../../src/store/spool.js';
import { StateStore } from '../../src/store/store.js';

const dirs: string[] = [];
const stores: StateStore[] = [];
afterEach(() => {
  stores.splice(0).forEach((s) => s.close());
  dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
});
const tmpRoot = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-spool-'));
  dirs.push(d);
  return d;
};
const open = (root: string): StateStore => {
  const s = StateStore.open(root);
  stores.push(s);
  return s;
};
/** A payload whose JSON text is exactly `bytes` long. */
const payload = (n: number, bytes: number): { n: number; pad: string } => {
  const base = JSON.stringify({ n, pad: '' }).length;
  return { n, pad: 'x'.repeat(bytes - base) };
};
const ns = (spool: Spool): number[] => spool.peek(1000).map((e) => (e.payload as { n: number }).n);

describe('Spool', () => {
  it('replays in insertion order with kind, ts and payload; ack deletes only what was published', () => {
    let t = 1000;
    const spool = new Spool(new SpoolTable(open(tmpRoot())), { clock: () => t++ });
    spool.push('telemetry', { n: 1 });
    spool.push('events', { n: 2, what: 'oom' });
    spool.push('telemetry', { n: 3 });
    const first = spool.peek(2);
    expect(first.map(({ kind, ts, payload: p }) => ({ kind, ts, payload: p }))).toEqual([
      { kind: 'telemetry', ts: 1000, payload: { n: 1 } },
      { kind: 'events', ts: 1001, payload: { n: 2, what: 'oom' } },
    ]);
    expect(first[0]!.id).toBeLessThan(first[1]!.id);
    spool.ack(first.map((e) => e.id));
    expect(ns(spool)).toEqual([3]);
    spool.ack(first.map((e) => e.id)); // twice: nothing more goes
    expect(spool.count()).toBe(1);
    expect(spool.bytes()).toBe(JSON.stringify({ n: 3 }).length);
  });

  it('keeps ids growing after everything was acked, so replay order stays insertion order', () => {
    const spool = new Spool(new SpoolTable(open(tmpRoot())));
    spool.push('telemetry', { n: 1 });
    const [a] = spool.peek(1);
    spool.ack([a!.id]);
    spool.push('telemetry', { n: 2 });
    expect(spool.peek(1)[0]!.id).toBeGreaterThan(a!.id);
  });

  it('stays under the byte cap by dropping the oldest first, and counts them persistently', () => {
    const spool = new Spool(new SpoolTable(open(tmpRoot())), { maxBytes: 1000 });
    for (let n = 1; n <= 4; n++) spool.push('telemetry', payload(n, 300));
    expect(spool.bytes()).toBe(900);
    spool.push('telemetry', payload(5, 300)); // 1500 > 1000: 1 and 2 go
    expect(ns(spool)).toEqual([3, 4, 5]);
    expect(spool.bytes()).toBe(900);
    expect(spool.dropped()).toBe(2);
    spool.pushAll([{ kind: 'events', payload: payload(6, 100) }, { kind: 'events', payload: payload(7, 100) }]);
    expect(ns(spool)).toEqual([4, 5, 6, 7]);
    expect(spool.dropped()).toBe(3);
    spool.forgetDropped(3);
    expect(spool.dropped()).toBe(0);
  });

  it('evicts telemetry before events: a crash event outlives newer telemetry (issue 23 item 6)', () => {
    const spool = new Spool(new SpoolTable(open(tmpRoot())), { maxBytes: 1000 });
    spool.push('events', payload(1, 200)); // the crash, oldest of all
    spool.push('telemetry', payload(2, 300));
    spool.push('events', payload(3, 200));
    spool.push('telemetry', payload(4, 300));
    spool.push('telemetry', payload(5, 300)); // 1300 > 1000: telemetry 2 goes, not event 1
    expect(ns(spool)).toEqual([1, 3, 4, 5]);
    spool.push('telemetry', payload(6, 300)); // 1300 again: telemetry 4 goes
    expect(ns(spool)).toEqual([1, 3, 5, 6]);
    expect(spool.peek(10).filter((e) => e.kind === 'events').map((e) => (e.payload as { n: number }).n)).toEqual([1, 3]);
    // Only when no telemetry is left do events go, oldest first.
    spool.pushAll([{ kind: 'events', payload: payload(7, 400) }, { kind: 'events', payload: payload(8, 400) }]);
    expect(ns(spool)).toEqual([3, 7, 8]);
    expect(spool.bytes()).toBe(1000);
    expect(spool.dropped()).toBe(5);
  });

  it('a payload bigger than the cap is dropped on its own, the rest kept', () => {
    const spool = new Spool(new SpoolTable(open(tmpRoot())), { maxBytes: 500 });
    spool.push('events', payload(1, 200));
    spool.push('events', payload(2, 600));
    expect(ns(spool)).toEqual([1]);
    expect(spool.dropped()).toBe(1);
  });

  it('forgetting reported drops keeps the ones counted after the report was read (issue 23 item 7)', () => {
    const spool = new Spool(new SpoolTable(open(tmpRoot())), { maxBytes: 600 });
    for (let n = 1; n <= 3; n++) spool.push('telemetry', payload(n, 300));
    const reported = spool.dropped(); // what the spool-dropped event carries
    expect(reported).toBe(1);
    spool.push('telemetry', payload(4, 300)); // dropped while that event is being published
    spool.forgetDropped(reported);
    expect(spool.dropped()).toBe(1);
    spool.forgetDropped(5); // never below zero
    expect(spool.dropped()).toBe(0);
  });

  it('drops a payload bigger than the whole cap, counted like the others', () => {
    const spool = new Spool(new SpoolTable(open(tmpRoot())), { maxBytes: 500 });
    spool.push('telemetry', payload(1, 200));
    spool.push('telemetry', payload(2, 600));
    expect(ns(spool)).toEqual([1]);
    expect(spool.bytes()).toBe(200);
    expect(spool.dropped()).toBe(1);
  });

  it('counts bytes, not characters, the same way at open and while running', () => {
    const root = tmpRoot();
    const spool = new Spool(new SpoolTable(open(root)));
    spool.push('events', { msg: 'Überspannung ⚡' });
    const expected = Buffer.byteLength(JSON.stringify({ msg: 'Überspannung ⚡' }));
    expect(spool.bytes()).toBe(expected);
    stores.pop()!.close();
    expect(new Spool(new SpoolTable(open(root))).bytes()).toBe(expected);
  });

  it('keeps entries, their order, the byte total and the dropped count across a reopen', () => {
    const root = tmpRoot();
    const a = new Spool(new SpoolTable(open(root)), { maxBytes: 700 });
    for (let n = 1; n <= 3; n++) a.push('telemetry', payload(n, 300));
    stores.pop()!.close();
    const store = open(root);
    expect(store.getMeta(SPOOL_DROPPED_KEY)).toBe('1');
    const b = new Spool(new SpoolTable(store), { maxBytes: 700 });
    expect(ns(b)).toEqual([2, 3]);
    expect(b.bytes()).toBe(600);
    expect(b.dropped()).toBe(1);
  });

  it('rejects unknown kinds and a non-positive cap; defaults to 4 MiB', () => {
    const store = open(tmpRoot());
    expect(new Spool(new SpoolTable(store)).maxBytes).toBe(DEFAULT_SPOOL_MAX_BYTES);
    expect(() => new Spool(new SpoolTable(store), { maxBytes: 0 })).toThrow(BerthError);
    expect(() => new Spool(new SpoolTable(store)).push('logs' as 'events', {})).toThrow(/unknown spool kind/);
    expect(new Spool(new SpoolTable(store)).count()).toBe(0);
  });
});
