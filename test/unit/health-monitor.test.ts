import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVICE_LABEL, SPEC_LABEL } from '../../src/compose/labels.js';
import type { AppService, ServiceContext } from '../../src/compose/model.js';
import { normalizeService, specHash } from '../../src/compose/service.js';
import { HealthMonitor, type HealthDetail } from '../../src/agent/health-monitor.js';
import type { ServiceHealth, ServiceSpec } from '../../src/protocol/types.js';
import { defaultRunOptions } from '../../src/runtime/options.js';
import type { ContainerRecord } from '../../src/runtime/records.js';
import { EngineDouble, type EngineDoubleOptions } from '../helpers/engine-double.js';

const IMAGE = 'app:1';
const ctx: ServiceContext = { app: 'app', revision: 1, networks: new Map(), volumes: new Map(), configs: new Map(), secrets: new Map(), dataDir: '/var/lib/berth/apps/app', hashes: new Map() };
const withCheck: ServiceSpec = { image: IMAGE, healthcheck: { test: ['CMD-SHELL', 'echo ok'], interval: '1s', retries: 1 } };
const SERVICE = ['sh', '-c', "trap 'exit 0' TERM; sleep 600 & wait"];

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** The test double, counting how often the monitor reads the container list and runs a check. */
class CountingEngine extends EngineDouble {
  readonly calls = { list: 0, exec: 0 };
  constructor(o: EngineDoubleOptions) {
    super(o);
  }
  override list(): ContainerRecord[] {
    this.calls.list++;
    return super.list();
  }
  override exec(...args: Parameters<EngineDouble['exec']>): ReturnType<EngineDouble['exec']> {
    this.calls.exec++;
    return super.exec(...args);
  }
}

/** A monitor over the double; `deploy` creates and starts the container the deployer would make for `service` at `spec`. */
function rig(services: AppService[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-health-'));
  dirs.push(dir);
  const engine = new CountingEngine({ dir });
  const events: Array<{ service: string; health: ServiceHealth; detail: HealthDetail }> = [];
  const monitor = new HealthMonitor({
    engine, services: () => services, deploying: () => false, health: new Map(),
    onChange: (service, health, detail) => events.push({ service, health, detail }),
    tickMs: 20,
  });
  const deploy = async (service: string, spec: ServiceSpec): Promise<ContainerRecord> => {
    const c = engine.create(IMAGE, { ...defaultRunOptions(`${service}.0123456789ab`), cmd: SERVICE, labels: { [SERVICE_LABEL]: service, [SPEC_LABEL]: specHash(spec) } });
    return engine.start(c.id);
  };
  return { monitor, engine, events, services, deploy };
}

describe('HealthMonitor', () => {
  it('reads no container list while no service to run has a healthcheck, and does once one has', async () => {
    const plain: ServiceSpec = { image: IMAGE };
    const disabled: ServiceSpec = { image: IMAGE, healthcheck: { test: ['CMD', 'true'], disable: true } };
    const r = rig([normalizeService('web', plain, ctx), normalizeService('db', disabled, ctx)]);
    await r.deploy('web', plain);
    await r.deploy('db', disabled);
    r.engine.calls.list = 0;
    const t0 = Date.now();
    for (let t = 0; t < 5; t++) await r.monitor.tick(t0 + t * 1000);
    expect(r.engine.calls).toEqual({ list: 0, exec: 0 });
    expect(r.events).toEqual([]);

    r.services.push(normalizeService('api', withCheck, ctx));
    const api = await r.deploy('api', withCheck);
    r.engine.calls.list = 0;
    await r.monitor.tick(api.startedAt! + 1);
    expect(r.engine.calls).toEqual({ list: 1, exec: 1 });
    expect(r.events.map((e) => `${e.service}:${e.health}`)).toEqual(['api:healthy']);
  });

  it("a check's verdict carries its exit code and output; a restart's carries only the reason, though a tick saw it down", async () => {
    const r = rig([normalizeService('api', withCheck, ctx)]);
    const first = await r.deploy('api', withCheck);
    await r.monitor.tick(first.startedAt!);
    // A tick that finds it down between runs must not make its next run look first seen.
    await r.engine.kill(first.id, 'SIGKILL');
    await r.monitor.tick(first.startedAt! + 4000);
    await sleep(2);
    const again = await r.engine.start(first.id, { countRestart: true });
    await r.monitor.tick(again.startedAt! + 1);
    const container = 'api.0123456789ab';
    // toStrictEqual: the restart's detail has no exitCode or output key at all, not even undefined.
    expect(r.events).toStrictEqual([
      { service: 'api', health: 'healthy', detail: { container, failures: 0, exitCode: 0, output: 'ok' } },
      { service: 'api', health: 'starting', detail: { container, failures: 0, reason: 'restarted' } },
      { service: 'api', health: 'healthy', detail: { container, failures: 0, exitCode: 0, output: 'ok' } },
    ]);
  });

  it('while running, lists the containers again only after the engine reported a change', async () => {
    const hourly: ServiceSpec = { ...withCheck, healthcheck: { ...withCheck.healthcheck, interval: '1h' } };
    const r = rig([normalizeService('api', hourly, ctx)]);
    await r.deploy('api', hourly);
    r.engine.calls.list = 0;
    const abort = new AbortController();
    const running = r.monitor.run(abort.signal);
    await sleep(200); // about ten ticks
    expect(r.engine.calls.list).toBe(1);
    const other = r.engine.create(IMAGE, { ...defaultRunOptions('other'), cmd: SERVICE });
    await sleep(100);
    expect(r.engine.calls.list).toBe(2);
    await r.engine.remove(other.id);
    abort.abort();
    await running;
  });
});
