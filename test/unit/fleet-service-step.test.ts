import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { parseListen } from '../../src/fleet/service/serve.js';
import { serveStatic } from '../../src/fleet/service/static.js';
import { decideStep, nextStepAt, resumedPaceAt } from '../../src/fleet/service/step.js';
import { DEVICE_OUTCOMES, type DeviceOutcome, type RolloutRecord, type StepView } from '../../src/fleet/service/store.js';

type Counts = Partial<Record<DeviceOutcome, number>>;
function record(state: RolloutRecord['state'], policy: Partial<RolloutRecord['policy']> = {}, counts: Counts = {}, more: Partial<RolloutRecord> = {}): RolloutRecord {
  const all = Object.fromEntries(DEVICE_OUTCOMES.map((o) => [o, counts[o] ?? 0])) as Record<DeviceOutcome, number>;
  const total = Object.values(all).reduce((a, b) => a + b, 0);
  return { id: 'r', name: 'app', state, createdAt: 0, createdBy: 't', policy: { minDevices: 1, timeoutMs: 10_000, ...policy }, images: {}, body: '{}', counts: { ...all, total }, sentCount: 0, ...more };
}
const view = (next: string[] = [], expired: string[] = [], oldestInFlightAt?: number): StepView => ({ next, expired, ...(oldestInFlightAt !== undefined && { oldestInFlightAt }) });

describe('decideStep', () => {
  it('sends the next pending devices at once without a rate, and paces from the first send with one', () => {
    expect(decideStep(record('running', {}, { pending: 3 }), view(['a', 'b']), 100)).toEqual({ send: ['a', 'b'] });
    const paced = record('running', { ratePerMin: 60 }, { pending: 1, sent: 1 }, { startedAt: 0, sentCount: 1 });
    expect(decideStep(paced, view(['b'], [], 0), 500)).toEqual({});
    expect(decideStep(paced, view(['b'], [], 0), 1000)).toEqual({ send: ['b'] });
    // The first device of a paced rollout goes at once.
    expect(decideStep(record('running', { ratePerMin: 1 }, { pending: 2 }), view(['a', 'b']), 7)).toEqual({ send: ['a'] });
  });

  it('keeps the pace after a long pause instead of sending the backlog at once', () => {
    // 60/min, 2 sent in the first 2 s, paused for 10 minutes, resumed at 600 s: one device now, one a second.
    const resumed = record('running', { ratePerMin: 60 }, { applied: 2, pending: 20 }, { startedAt: 0, sentCount: 2, pace: { at: 600_000, sent: 2 } });
    const next = Array.from({ length: 20 }, (_, i) => `d${i}`);
    expect(decideStep(resumed, view(next), 600_000)).toEqual({ send: ['d0'] });
    const after = { ...resumed, sentCount: 3, counts: { ...resumed.counts, pending: 19, sent: 1 } };
    expect(decideStep(after, view(next.slice(1), [], 600_000), 600_999)).toEqual({});
    expect(decideStep(after, view(next.slice(1), [], 600_000), 601_000)).toEqual({ send: ['d1'] });
    expect(nextStepAt(after, view(next.slice(1), [], 600_000), {}, 600_500)).toBe(601_000);
  });

  it('restarts the pace at a resume, but not before the next device was due at the old pace', () => {
    // 1/min, the first sent at 0: paused and resumed at 5 s, the second is still due at 60 s, not at once.
    const short = record('running', { ratePerMin: 1 }, { sent: 1, pending: 2 }, { startedAt: 0, sentCount: 1 });
    expect(resumedPaceAt(short, 5_000)).toBe(60_000);
    // Resumed after ten minutes: from the resume, one at once (the backlog is not sent in a burst).
    expect(resumedPaceAt(short, 600_000)).toBe(600_000);
    // A second resume counts from the first one's pace.
    const again = { ...short, sentCount: 2, pace: { at: 600_000, sent: 1 } };
    expect(resumedPaceAt(again, 610_000)).toBe(660_000);
    expect(resumedPaceAt(record('running', {}, { pending: 2 }), 5)).toBe(5);
  });

  it('times out expired devices and completes when nothing is left', () => {
    expect(decideStep(record('running', {}, { applied: 1, sent: 1 }), view([], ['b'], 0), 10_000)).toEqual({
      finish: [{ device: 'b', outcome: 'timed-out' }], state: { state: 'completed', finished: true },
    });
    expect(decideStep(record('running', {}, { applied: 1, sent: 1 }), view([], [], 0), 9_999)).toEqual({});
  });

  it('sends nothing while paused, and finishes a paused rollout with nothing pending', () => {
    expect(decideStep(record('paused', {}, { pending: 1 }), view(['a']), 0)).toEqual({});
    expect(decideStep(record('paused', {}, { applied: 1 }), view(), 0)).toEqual({ state: { state: 'completed', finished: true } });
  });

  it('aborts at the threshold: the unsent become not-sent, the sent are still followed', () => {
    const d = decideStep(record('running', { abortAfterPct: 50 }, { failed: 1, sent: 1, pending: 1 }, { sentCount: 2 }), view(['c'], [], 0), 1);
    expect(d.send).toBeUndefined();
    expect(d.dropPending).toBe(true);
    expect(d.state).toMatchObject({ state: 'aborted', finished: false, reason: expect.stringMatching(/1 of 1/) });
    expect(decideStep(record('aborted', {}, { failed: 1, applied: 1, 'not-sent': 1 }), view(), 2)).toEqual({ state: { state: 'aborted', finished: true } });
  });

  it('wakes for the next due device or the first timeout', () => {
    const paced = record('running', { ratePerMin: 60 }, { sent: 1, pending: 1 }, { startedAt: 0, sentCount: 1 });
    expect(nextStepAt(paced, view(['b'], [], 0), {}, 200)).toBe(1000);
    expect(nextStepAt({ ...paced, state: 'paused' }, view(['b'], [], 0), {}, 200)).toBe(10_000);
    expect(nextStepAt(record('running', {}, { applied: 1 }), view(), {}, 200)).toBeUndefined();
    // Capped per step without a rate: the rest right away.
    expect(nextStepAt(record('running', {}, { pending: 30 }), view(['a']), { send: ['a'] }, 200)).toBe(200);
  });
});

describe('parseListen', () => {
  it('takes HOST:PORT and [v6]:PORT and names the flag otherwise', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(() => parseListen('8080')).toThrow(/--listen/);
    expect(() => parseListen('h:70000')).toThrow(/--listen/);
  });
});

describe('serveStatic', () => {
  function get(dir: string, p: string): { status: number; body: string } {
    let status = 0;
    let body = '';
    const res = {
      writeHead: (s: number) => ((status = s), res),
      end: (b?: string) => ((body += b ?? ''), res),
      write: (b: Buffer) => ((body += b.toString()), true),
      on: () => res, once: () => res, emit: () => true, removeListener: () => res,
    } as unknown as ServerResponse;
    const file = (() => {
      try {
        serveStatic(dir, { method: 'HEAD' } as IncomingMessage, res, p);
      } catch (err) {
        return String(err);
      }
      return undefined;
    })();
    return { status, body: file ?? body };
  }

  it('serves files inside the directory, index.html for client routes, nothing outside', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-web-'));
    try {
      fs.mkdirSync(path.join(root, 'web'));
      fs.writeFileSync(path.join(root, 'web', 'index.html'), '<h1>x</h1>');
      fs.writeFileSync(path.join(root, 'secret.txt'), 'no');
      fs.symlinkSync(path.join(root, 'secret.txt'), path.join(root, 'web', 'link.txt'));
      const web = path.join(root, 'web');
      expect(get(web, '/').status).toBe(200);
      expect(get(web, '/devices/svc-0').status).toBe(200);
      expect(get(web, '/devices/pi.kitchen').status).toBe(200);
      expect(get(web, '/index.html').status).toBe(200);
      expect(get(web, '/../secret.txt').status).toBe(404);
      expect(get(web, '/%2e%2e/secret.txt').status).toBe(404);
      expect(get(web, '/link.txt').status).toBe(404);
      expect(get(web, '/missing.js').status).toBe(404);
      expect(get(path.join(root, 'nope'), '/').status).toBe(404);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
