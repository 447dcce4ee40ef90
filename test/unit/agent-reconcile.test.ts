import { describe, expect, it } from 'vitest';
import { splitArgs } from '../../src/compose/args.js';
import { parseHealthcheck } from '../../src/compose/healthcheck.js';
import { containerName } from '../../src/compose/labels.js';
import { appFromMessage, normalizeDesired } from '../../src/compose/normalize.js';
import { serviceRunOptions, specHash } from '../../src/compose/service.js';
import { parseCommand } from '../../src/protocol/validate.js';
import { DeviceTopics, isValidDeviceId } from '../../src/protocol/topics.js';
import { plan as planSteps, type ManagedContainer } from '../../src/agent/reconcile/plan.js';
import type { ServiceSpec } from '../../src/protocol/types.js';
import type { App } from '../../src/compose/model.js';

const web: ServiceSpec = { image: 'reg/app:1', command: ['sleep', '60'] };
const db: ServiceSpec = { image: 'reg/db:1' };
const desired = (services: Record<string, ServiceSpec>, revision = 2): App => normalizeDesired({ revision, services });
const running = (service: string, spec: ServiceSpec, isRunning = true): ManagedContainer => {
  const hash = specHash(spec);
  return { id: `id-${service}-${hash}`, name: containerName(service, hash), service, hash, running: isRunning };
};

/** The planner over containers: the app's networks (its default one) already exist on the device; resources.ts's own tests plan those. */
const plan = (containers: ManagedContainer[], app: App, strategy: 'download-then-kill' | 'kill-then-download') =>
  planSteps({ containers, networks: [...app.networks.values()].map((n) => ({ name: n.hostName, app: app.name })), volumes: new Set() }, app, { strategy });

describe('planner', () => {
  it('first deploy: pull, create, start each service, then the health window', () => {
    const p = plan([], desired({ web, db }), 'download-then-kill');
    expect(p.steps.map((s) => `${s.kind}${'service' in s ? ` ${s.service}` : ''}`)).toEqual([
      'pull db', 'pull web', 'create db', 'create web', 'start db', 'start web', 'await-healthy',
    ]);
  });

  it('keeps unchanged services, replaces changed ones download-then-kill, removes old ones after the window', () => {
    const web2 = { ...web, command: ['sleep', '61'] };
    const p = plan([running('web', web), running('db', db)], desired({ web: web2, db }), 'download-then-kill');
    expect(p.unchanged).toEqual(['db']);
    expect(p.steps.map((s) => s.kind)).toEqual(['pull', 'create', 'stop', 'start', 'await-healthy', 'remove']);
    expect(p.steps.find((s) => s.kind === 'stop')).toMatchObject({ service: 'web', id: running('web', web).id });
  });

  it('kill-then-download stops first', () => {
    const p = plan([running('web', web)], desired({ web: { ...web, image: 'reg/app:2' } }), 'kill-then-download');
    expect(p.steps.map((s) => s.kind)).toEqual(['stop', 'pull', 'create', 'start', 'await-healthy', 'remove']);
  });

  it('a service that is gone is stopped and removed; a stopped container of the right spec is just started', () => {
    const p = plan([running('web', web, false), running('old', db)], desired({ web }), 'download-then-kill');
    expect(p.steps.map((s) => `${s.kind}${'service' in s ? ` ${s.service}` : ''}`)).toEqual(['stop old', 'start web', 'await-healthy', 'remove old']);
  });

  it('nothing to do when everything runs as desired', () => {
    expect(plan([running('web', web)], desired({ web }), 'download-then-kill')).toEqual({ steps: [], unchanged: ['web'] });
  });
});

describe('compose → run options', () => {
  it('maps compose fields with the CLI parsers and labels the container', () => {
    const o = serviceRunOptions('web', {
      image: 'x', command: 'sh -c "echo hi; sleep 1"', environment: { A: 1, B: null, C: 'x y' }, mem_limit: '64m', cpus: '0.5', pids_limit: 50,
      restart: 'on-failure:3', network_mode: 'host', read_only: true, stop_grace_period: '1500ms', labels: ['berth.priority=critical', 'team=iot'],
    }, 7);
    expect(o.cmd).toEqual(['sh', '-c', 'echo hi; sleep 1']);
    expect(o.env).toEqual(['A=1', 'B=', 'C=x y']);
    expect(o).toMatchObject({ memory: 64 * 1024 * 1024, cpus: 0.5, pidsLimit: 50, restart: { name: 'on-failure', maxRetries: 3 }, network: 'host', readOnly: true, stopTimeout: 2 });
    expect(o.labels).toMatchObject({ 'berth.priority': 'critical', team: 'iot', 'berth.service': 'web', 'berth.revision': '7' });
    expect(o.name).toBe(`web.${o.labels['berth.spec']}`);
  });

  it('refuses what berth run would refuse, naming the service', () => {
    expect(() => serviceRunOptions('web', { image: 'x', mem_limit: '12q' }, 1)).toThrow(/services.web.mem_limit: invalid size "12q"/);
    expect(() => serviceRunOptions('web', { image: 'x', labels: { 'berth.service': 'other' } }, 1)).toThrow(/reserved for berth/);
    expect(() => serviceRunOptions('web', { image: 'x', labels: { 'berth.priority': 'vip' } }, 1)).toThrow(/not a priority class/);
    expect(() => splitArgs('echo "unterminated')).toThrow(/unterminated/);
  });

  it('hash is stable across key order and changes with the spec', () => {
    expect(specHash({ image: 'a', command: ['x'] })).toBe(specHash({ command: ['x'], image: 'a' }));
    expect(specHash({ image: 'a', command: ['x'] })).not.toBe(specHash({ image: 'a', command: ['y'] }));
  });

  it('healthchecks: CMD, CMD-SHELL, string, NONE, disable', () => {
    expect(parseHealthcheck('w', { test: ['CMD', 'wget', '-q', 'http://127.0.0.1/'], interval: '5s', retries: 2 })).toEqual({ argv: ['wget', '-q', 'http://127.0.0.1/'], intervalMs: 5000, timeoutMs: 30_000, retries: 2, startPeriodMs: 0 });
    expect(parseHealthcheck('w', { test: 'test -f /ok' })?.argv).toEqual(['/bin/sh', '-c', 'test -f /ok']);
    expect(parseHealthcheck('w', { test: ['NONE'] })).toBeUndefined();
    expect(parseHealthcheck('w', { test: ['CMD', 'x'], disable: true })).toBeUndefined();
    expect(() => parseHealthcheck('w', { test: ['RUN', 'x'] })).toThrow(/healthcheck.test/);
  });
});

describe('protocol validation', () => {
  it('accepts a valid desired state and fills the update policy defaults', () => {
    const d = appFromMessage(JSON.stringify({ revision: 3, services: { web }, update: { health_window: '10s' } }));
    expect(d.update).toEqual({ strategy: 'download-then-kill', healthWindowMs: 10_000, onFailure: 'rollback' });
  });

  it.each([
    ['empty', ''],
    ['not JSON', '{'],
    ['no revision', JSON.stringify({ services: {} })],
    ['revision 0', JSON.stringify({ revision: 0, services: {} })],
    ['string revision', JSON.stringify({ revision: '3', services: {} })],
    ['unknown service field', JSON.stringify({ revision: 1, services: { web: { image: 'x', volumes_from: ['db'] } } })],
    ['bad service name', JSON.stringify({ revision: 1, services: { '../x': { image: 'x' } } })],
    ['bad duration', JSON.stringify({ revision: 1, services: {}, update: { health_window: 'soon' } })],
    ['too big', JSON.stringify({ revision: 1, services: {}, pad: 'x'.repeat(300_000) })],
    ['bad memory', JSON.stringify({ revision: 1, services: { web: { image: 'x', mem_limit: '1zb' } } })],
  ])('rejects %s with an invalid error', (_, payload) => {
    expect(() => appFromMessage(payload)).toThrow(expect.objectContaining({ category: 'invalid' }));
  });

  it('commands: actions that need a service or an interval say so', () => {
    expect(parseCommand('{"action":"ping"}')).toEqual({ action: 'ping' });
    expect(() => parseCommand('{"action":"restart"}')).toThrow(/service/);
    expect(() => parseCommand('{"action":"set-telemetry-interval"}')).toThrow(/interval/);
    expect(() => parseCommand('{"action":"ping","extra":1}')).toThrow(/invalid/);
  });

  it('topics: device ids are single safe topic levels', () => {
    expect(isValidDeviceId('pi-zero-0042')).toBe(true);
    for (const bad of ['', 'a/b', '+', '#', 'a b', '-lead', 'x'.repeat(129)]) expect(isValidDeviceId(bad)).toBe(false);
    const t = new DeviceTopics('d1');
    expect(t.topic('desired')).toBe('berth/v1/d1/desired');
    expect(t.commandId('berth/v1/d1/cmd/42')).toBe('42');
    expect(t.commandId('berth/v1/d1/cmd/42/result')).toBeUndefined();
    expect(t.commandId('berth/v1/d2/cmd/42')).toBeUndefined();
  });
});
