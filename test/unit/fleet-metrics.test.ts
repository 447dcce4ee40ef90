import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inventory } from '../../src/fleet/inventory.js';
import { renderMetrics } from '../../src/fleet/service/metrics.js';
import { openSqlStore } from '../../src/fleet/service/sql-store.js';
import { SqliteDriver } from '../../src/fleet/service/sqlite-driver.js';
import type { FleetStore } from '../../src/fleet/service/store.js';
import { FleetView } from '../../src/fleet/view.js';

// GET /metrics over a real SQLite store: every device's gauges, read and written with the event loop
// served between chunks (a scrape of a large fleet must not hold up the API).
describe('renderMetrics', () => {
  let dir: string;
  let store: FleetStore;
  const N = 1234;
  const id = (i: number) => `m${String(i).padStart(4, '0')}`;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-metrics-'));
    store = await openSqlStore(SqliteDriver.open(dir));
    await store.batch(async (w) => {
      for (let i = 0; i < N; i++) await w.upsertDevice(id(i), { online: i % 4 !== 0, reported: { revision: i, status: 'applied' } });
    });
  });
  afterAll(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes every device once per family, in id order, answering other work while it reads and writes', async () => {
    let rendering = true;
    let between = 0;
    const other = (async () => {
      while (rendering) {
        await new Promise((r) => setImmediate(r));
        if (rendering) between++;
      }
    })();
    const text = await renderMetrics(store, new Inventory({}, new FleetView()));
    rendering = false;
    await other;
    const lines = text.trimEnd().split('\n');
    expect(lines).toContain(`berth_fleet_devices ${N}`);
    expect(lines).toContain(`berth_fleet_devices_online ${N - Math.ceil(N / 4)}`);
    const online = lines.filter((l) => l.startsWith('berth_device_online{'));
    expect(online).toHaveLength(N);
    expect(online[0]).toBe(`berth_device_online{device="${id(0)}"} 0`);
    expect(online[N - 1]).toBe(`berth_device_online{device="${id(N - 1)}"} 1`);
    expect(lines).toContain(`berth_device_revision{device="${id(77)}"} 77`);
    // Each family's samples together, right after its HELP and TYPE (the text format's rule); a family
    // without values (no telemetry yet) has none.
    const families = lines.filter((l) => l.startsWith('# TYPE berth_device_')).map((l) => l.split(' ')[2]!);
    expect(families).toHaveLength(9);
    for (const f of families) {
      const at = lines.indexOf(`# TYPE ${f} gauge`);
      const block = lines.slice(at + 1).findIndex((l) => !l.startsWith(`${f}{`));
      expect(lines.filter((l) => l.startsWith(`${f}{`)).length, f).toBe(block === -1 ? lines.length - at - 1 : block);
    }
    // 3 chunks of devices and 9 device families: the loop ran other work between them.
    expect(between).toBeGreaterThanOrEqual(10);
  });
});
