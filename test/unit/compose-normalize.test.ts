import { describe, expect, it } from 'vitest';
import { AppCache } from '../../src/compose/cache.js';
import { deployedFor, ownerOf, REVISION_LABEL, SERVICE_LABEL, SPEC_LABEL } from '../../src/compose/labels.js';
import { appFromMessage, atRevision, normalizeDesired } from '../../src/compose/normalize.js';
import { specHash } from '../../src/compose/service.js';
import type { DesiredState, ServiceSpec } from '../../src/protocol/types.js';

const api: ServiceSpec = {
  image: 'reg/api:2', command: 'serve --port 8080', environment: ['MODE=edge'], mem_limit: '48m', restart: 'always',
  healthcheck: { test: ['CMD', 'wget', '-qO-', 'http://127.0.0.1:8080/health'], interval: '15s', start_period: '1m' },
};
const sensor: ServiceSpec = { image: 'reg/sensor:1', devices: ['/dev/i2c-1'], read_only: true };
const desired = (revision: number, services: Record<string, ServiceSpec> = { sensor, api }): DesiredState => ({ revision, services });

describe('normalizeDesired', () => {
  it('resolves every service once: run options, hash, healthcheck in numbers, in name order', () => {
    const app = normalizeDesired(desired(4));
    expect([...app.services.keys()]).toEqual(['api', 'sensor']);
    const a = app.services.get('api')!;
    expect(a).toMatchObject({ name: 'api', image: 'reg/api:2', hash: specHash(api) });
    expect(a.run).toMatchObject({ name: `api.${specHash(api)}`, cmd: ['serve', '--port', '8080'], env: ['MODE=edge'], memory: 48 * 1024 * 1024, restart: { name: 'always' } });
    expect(a.run.labels).toEqual({ [SERVICE_LABEL]: 'api', [SPEC_LABEL]: specHash(api), [REVISION_LABEL]: '4' });
    expect(a.healthcheck).toEqual({ argv: ['wget', '-qO-', 'http://127.0.0.1:8080/health'], intervalMs: 15_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 60_000 });
    const s = app.services.get('sensor')!;
    expect(s.healthcheck).toBeUndefined();
    expect(s.run).toMatchObject({ readOnly: true, devices: [{ hostPath: '/dev/i2c-1', containerPath: '/dev/i2c-1', permissions: 'rwm' }] });
  });

  it('fills the update policy defaults and resolves the health window', () => {
    expect(normalizeDesired(desired(1)).update).toEqual({ strategy: 'download-then-kill', healthWindowMs: 30_000, onFailure: 'rollback' });
    const d: DesiredState = { ...desired(1), update: { strategy: 'kill-then-download', health_window: '1m30s' } };
    expect(normalizeDesired(d).update).toEqual({ strategy: 'kill-then-download', healthWindowMs: 90_000, onFailure: 'rollback' });
  });

  it('keeps what it was made from, named by the desired state, with its data directory under the state root', () => {
    // A local bind volume's relative device lives in the app's data directory, which shows where that is.
    const d: DesiredState = { ...desired(2), name: 'greenhouse', volumes: { logs: { driver_opts: { type: 'none', o: 'bind', device: './logs' } } } };
    const app = normalizeDesired(d, { stateRoot: '/srv/berth' });
    expect(app).toMatchObject({ name: 'greenhouse', revision: 2, source: d });
    expect(app.volumes.get('logs')!.driverOpts.device).toBe('/srv/berth/apps/greenhouse/logs');
    const unnamed = normalizeDesired({ ...d, name: undefined });
    expect(unnamed.name).toBe('app');
    expect(unnamed.volumes.get('logs')!.driverOpts.device).toBe('/var/lib/berth/apps/app/logs');
  });

  it('refuses values berth run refuses, naming the key or the service', () => {
    expect(() => normalizeDesired(desired(1, { api: { ...api, mem_limit: '1q' } }))).toThrow(/services\.api\.mem_limit: invalid size "1q"/);
    expect(() => normalizeDesired(desired(1, { api: { ...api, labels: { 'berth.spec': 'forged' } } }))).toThrow(/services\.api\.labels: label "berth\.spec" is reserved for berth/);
    expect(() => normalizeDesired(desired(1, { api: { ...api, volumes: ['data'] } }))).toThrow(/services\.api\.volumes: container path "data" must be absolute/);
    expect(() => normalizeDesired(desired(1, { api: { ...api, healthcheck: { test: ['RUN', 'x'] } } }))).toThrow(/services\.api\.healthcheck\.test/);
  });
});

describe('appFromMessage', () => {
  it('checks the shape, then normalizes; schema errors name the key path', () => {
    expect(appFromMessage(JSON.stringify(desired(9))).services.get('api')?.hash).toBe(specHash(api));
    const ports = JSON.stringify({ revision: 1, services: { api: { image: 'x', volumes_from: ['db'] } } });
    expect(() => appFromMessage(ports)).toThrow(/desired state is invalid: services\.api\.volumes_from: berth does not support this compose key/);
    const noImage = JSON.stringify({ revision: 1, services: { api: { command: 'x' } } });
    expect(() => appFromMessage(noImage)).toThrow(/services\.api: missing required key "image"/);
    const size = JSON.stringify({ revision: 1, services: { api: { image: 'x', mem_limit: '12q' } } });
    expect(() => appFromMessage(size)).toThrow(/is invalid: services\.api\.mem_limit: must match pattern "[^"]+"$/);
  });
});

describe('the spec hash and the content of configs and secrets', () => {
  const b64 = (t: string) => Buffer.from(t).toString('base64');
  const withFiles = (conf: string, secret: string, extra: Record<string, ServiceSpec> = {}): DesiredState => ({
    revision: 1,
    services: { broker: { image: 'reg/mq:2', configs: [{ source: 'conf', target: '/etc/mq.conf' }], secrets: ['token'] }, api, ...extra },
    configs: { conf: { content: b64(conf) }, unused: { content: b64(conf) } },
    secrets: { token: { content: b64(secret) } },
  });
  const hashes = (d: DesiredState) => Object.fromEntries([...normalizeDesired(d).services].map(([n, s]) => [n, s.hash]));

  it('changes when a mounted config or secret changes, and only for the services that mount it', () => {
    const base = hashes(withFiles('listener 1883', 's3cret'));
    const conf = hashes(withFiles('listener 1884', 's3cret'));
    const secret = hashes(withFiles('listener 1883', 'rotated'));
    expect(conf.broker).not.toBe(base.broker);
    expect(secret.broker).not.toBe(base.broker);
    expect(new Set([base.broker, conf.broker, secret.broker]).size).toBe(3);
    expect(conf.api).toBe(base.api);
    // A service without configs keeps the hash of its fields alone (containers of earlier versions match).
    expect(base.api).toBe(specHash(api));
    expect(hashes(withFiles('listener 1883', 's3cret'))).toEqual(base);
  });

  it('reaches a service in the namespace of one whose config changed (network_mode: service:)', () => {
    const side: Record<string, ServiceSpec> = { side: { image: 'reg/side:1', network_mode: 'service:broker' } };
    const a = hashes(withFiles('listener 1883', 's3cret', side));
    const b = hashes(withFiles('listener 1884', 's3cret', side));
    expect(b.side).not.toBe(a.side);
  });
});

describe('a desired state on the device', () => {
  it('is not interpolated again: `$` and `$$` reach the run options as the fleet tool sent them', () => {
    // The compose reader turned the file's `$$` into `$` once; a second pass here would eat the `$`.
    const app = appFromMessage(JSON.stringify({ revision: 1, services: { api: { image: 'x', command: ['sh', '-c', 'echo $HOME $$ ${X:-y}'], environment: { P: '$5 $$ ${Q}' } } } }));
    expect(app.services.get('api')!.run.cmd).toEqual(['sh', '-c', 'echo $HOME $$ ${X:-y}']);
    expect(app.services.get('api')!.run.env).toEqual(['P=$5 $$ ${Q}']);
  });
});

describe('atRevision', () => {
  it('changes the revision and its label, nothing that identifies the containers', () => {
    const one = normalizeDesired(desired(1));
    const five = atRevision(one, 5);
    expect(five.revision).toBe(5);
    expect(five.source).toEqual({ ...one.source, revision: 5 });
    for (const [name, s] of five.services) {
      expect(s.hash).toBe(one.services.get(name)!.hash);
      expect(s.run.name).toBe(one.services.get(name)!.run.name);
      expect(s.run.labels[REVISION_LABEL]).toBe('5');
    }
    expect(one.services.get('api')!.run.labels[REVISION_LABEL]).toBe('1');
  });
});

describe('AppCache', () => {
  it('normalizes a recorded revision once and hands the same model back', () => {
    const cache = new AppCache();
    const d = desired(3);
    const first = cache.of(d);
    expect(cache.of(JSON.parse(JSON.stringify(d)) as DesiredState)).toBe(first);
  });

  it('returns a remembered app for its revision and forgets the oldest beyond its size', () => {
    const cache = new AppCache(2);
    const apps = [1, 2, 3].map((r) => cache.remember(normalizeDesired(desired(r))));
    expect(cache.of(desired(3))).toBe(apps[2]);
    expect(cache.of(desired(2))).toBe(apps[1]);
    expect(cache.of(desired(1))).not.toBe(apps[0]);
  });
});

describe('container ownership', () => {
  it('is read from the labels the model sets, and only from both of them', () => {
    const { run, hash } = normalizeDesired(desired(1)).services.get('sensor')!;
    expect(ownerOf(run.labels)).toEqual({ service: 'sensor', hash });
    expect(deployedFor(run.labels, 'sensor', hash)).toBe(true);
    expect(deployedFor(run.labels, 'sensor', 'other')).toBe(false);
    expect(ownerOf({ [SERVICE_LABEL]: 'sensor' })).toBeUndefined();
    expect(ownerOf({ team: 'iot' })).toBeUndefined();
  });
});
