import { describe, expect, it } from 'vitest';
import { SERVICE_LABEL, SPEC_LABEL } from '../../src/compose/labels.js';
import type { AppService } from '../../src/compose/model.js';
import { normalizeService, specHash } from '../../src/compose/service.js';
import { HealthMonitor, type HealthDetail } from '../../src/agent/health-monitor.js';
import type { ServiceHealth, ServiceSpec } from '../../src/protocol/types.js';
import type { ContainerRecord } from '../../src/store/containers.js';

const withCheck: ServiceSpec = { image: 'app:1', healthcheck: { test: ['CMD', 'true'], interval: '1s', retries: 1 } };

/** The running container the deployer made for `service` at `spec`. */
const containerFor = (service: string, spec: ServiceSpec, startedAt: number): ContainerRecord => ({
  id: `${service}-id`, name: `${service}.0123456789ab`, image: spec.image, imageDigest: 'sha256:0', runtime: 'crun', createdAt: 0,
  startedAt, state: 'running', restartCount: 0, oomKilled: false, stoppedByUser: false,
  options: { labels: { [SERVICE_LABEL]: service, [SPEC_LABEL]: specHash(spec) } } as unknown as ContainerRecord['options'],
});

/** A monitor over a fake engine that counts container list reads and checks run. */
function rig(services: AppService[], containers: ContainerRecord[]) {
  const calls = { list: 0, exec: 0 };
  const events: Array<{ service: string; health: ServiceHealth; detail: HealthDetail }> = [];
  const monitor = new HealthMonitor({
    engine: {
      list: () => (calls.list++, containers),
      exec: async () => (calls.exec++, { exitCode: 0, output: 'ok\n' }),
    },
    services: () => services, deploying: () => false, health: new Map(),
    onChange: (service, health, detail) => events.push({ service, health, detail }),
  });
  return { monitor, calls, events, services, containers };
}

describe('HealthMonitor', () => {
  it('reads no container list while no service to run has a healthcheck, and does once one has', async () => {
    const plain: ServiceSpec = { image: 'app:1' };
    const disabled: ServiceSpec = { image: 'app:1', healthcheck: { test: ['CMD', 'true'], disable: true } };
    const r = rig([normalizeService('web', plain, 1), normalizeService('db', disabled, 1)], [containerFor('web', plain, 0), containerFor('db', disabled, 0)]);
    for (let t = 0; t < 5; t++) await r.monitor.tick(t * 1000);
    expect(r.calls).toEqual({ list: 0, exec: 0 });
    expect(r.events).toEqual([]);

    r.services.push(normalizeService('api', withCheck, 1));
    r.containers.push(containerFor('api', withCheck, 5000));
    await r.monitor.tick(5000);
    expect(r.calls).toEqual({ list: 1, exec: 1 });
    expect(r.events.map((e) => `${e.service}:${e.health}`)).toEqual(['api:healthy']);
  });

  it("a check's verdict carries its exit code and output; a restart's carries only the reason, though a tick saw it down", async () => {
    const r = rig([normalizeService('api', withCheck, 1)], [containerFor('api', withCheck, 1000)]);
    await r.monitor.tick(1000);
    // A tick that finds it down between runs must not make its next run look first seen.
    r.containers[0] = { ...r.containers[0]!, state: 'exited', exitCode: 3 };
    await r.monitor.tick(5000);
    r.containers[0] = { ...r.containers[0]!, state: 'running', startedAt: 9000, restartCount: 1 };
    await r.monitor.tick(9000);
    const container = 'api.0123456789ab';
    // toStrictEqual: the restart's detail has no exitCode or output key at all, not even undefined.
    expect(r.events).toStrictEqual([
      { service: 'api', health: 'healthy', detail: { container, failures: 0, exitCode: 0, output: 'ok' } },
      { service: 'api', health: 'starting', detail: { container, failures: 0, reason: 'restarted' } },
      { service: 'api', health: 'healthy', detail: { container, failures: 0, exitCode: 0, output: 'ok' } },
    ]);
  });
});
