import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { Rollout } from '../../src/fleet/rollout.js';
import { parseListen } from '../../src/fleet/service/serve.js';
import { serveStatic } from '../../src/fleet/service/static.js';
import { decideStep, nextStepAt } from '../../src/fleet/service/step.js';
import { DEVICE_OUTCOMES, type DeviceOutcome, type RolloutDeviceRecord, type RolloutRecord } from '../../src/fleet/service/store.js';

function record(state: RolloutRecord['state'], policy: Partial<RolloutRecord['policy']> = {}): RolloutRecord {
  const counts = Object.fromEntries(DEVICE_OUTCOMES.map((o) => [o, 0])) as Record<DeviceOutcome, number>;
  return { id: 'r', name: 'app', state, createdAt: 0, createdBy: 't', policy: { minDevices: 1, timeoutMs: 10_000, ...policy }, images: {}, body: '{}', counts: { ...counts, total: 0 } };
}
const row = (device: string, seq: number, outcome: DeviceOutcome, sentAt?: number): RolloutDeviceRecord => ({ device, seq, revision: 1, outcome, ...(sentAt !== undefined && { sentAt }) });

describe('Rollout.restore', () => {
  it('paces from the first send and re-applies the abort rule', () => {
    const r = Rollout.restore(['a', 'b', 'c', 'd'], { ratePerMin: 60, abortAfterPct: 50, minDevices: 2 }, [{ device: 'a', at: 1000, result: 'applied' }, { device: 'b', at: 2000 }]);
    expect(r.counts()).toMatchObject({ total: 4, sent: 2, applied: 1 });
    expect(r.nextDueIn(2500)).toBe(500); // the third device is due 2 s after the first
    expect(r.due(3000)).toEqual(['c']);
    r.finish('b', 'failed');
    expect(r.aborted).toMatch(/1 of 2/);
    expect(Rollout.restore(['a', 'b'], { abortAfterPct: 50 }, [{ device: 'a', at: 1, result: 'failed' }]).aborted).toBeDefined();
  });
});

describe('decideStep', () => {
  it('sends what the planner says is due, capped per step', () => {
    const d = decideStep(record('running'), [row('a', 0, 'pending'), row('b', 1, 'pending'), row('c', 2, 'pending')], 100, 2);
    expect(d).toEqual({ send: ['a', 'b'] });
    expect(decideStep(record('running', { ratePerMin: 60 }), [row('a', 0, 'sent', 0), row('b', 1, 'pending')], 500)).toEqual({});
    expect(decideStep(record('running', { ratePerMin: 60 }), [row('a', 0, 'sent', 0), row('b', 1, 'pending')], 1000)).toEqual({ send: ['b'] });
  });

  it('times out sent devices and completes when nothing is left', () => {
    expect(decideStep(record('running'), [row('a', 0, 'applied', 0), row('b', 1, 'sent', 0)], 10_000)).toEqual({
      finish: [{ device: 'b', outcome: 'timed-out' }], state: { state: 'completed', finished: true },
    });
    expect(decideStep(record('running'), [row('a', 0, 'applied', 0), row('b', 1, 'sent', 0)], 9_999)).toEqual({});
  });

  it('sends nothing while paused, and finishes a paused rollout with nothing pending', () => {
    expect(decideStep(record('paused'), [row('a', 0, 'pending')], 0)).toEqual({});
    expect(decideStep(record('paused'), [row('a', 0, 'applied', 0)], 0)).toEqual({ state: { state: 'completed', finished: true } });
  });

  it('aborts at the threshold: the unsent become not-sent, the sent are still followed', () => {
    const d = decideStep(record('running', { abortAfterPct: 50 }), [row('a', 0, 'failed', 0), row('b', 1, 'sent', 0), row('c', 2, 'pending')], 1);
    expect(d.send).toBeUndefined();
    expect(d.finish).toEqual([{ device: 'c', outcome: 'not-sent' }]);
    expect(d.state).toMatchObject({ state: 'aborted', finished: false, reason: expect.stringMatching(/1 of 1/) });
    expect(decideStep(record('aborted'), [row('a', 0, 'failed', 0), row('b', 1, 'applied', 0), row('c', 2, 'not-sent')], 2)).toEqual({ state: { state: 'aborted', finished: true } });
  });

  it('wakes for the next due device or the first timeout', () => {
    expect(nextStepAt(record('running', { ratePerMin: 60 }), [row('a', 0, 'sent', 0), row('b', 1, 'pending')], 200)).toBe(1000);
    expect(nextStepAt(record('paused', { ratePerMin: 60 }), [row('a', 0, 'sent', 0), row('b', 1, 'pending')], 200)).toBe(10_000);
    expect(nextStepAt(record('running'), [row('a', 0, 'applied', 0)], 200)).toBeUndefined();
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
