import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { Inventory } from '../inventory.js';
import { deviceSummary, type DeviceSummary } from './present.js';
import { DEVICE_OUTCOMES, type FleetStore, type RolloutState } from './store.js';

/**
 * GET /metrics in the Prometheus text format (0.0.4): fleet gauges and per-device gauges labelled
 * `device`, so a Grafana pointed at it needs no recording rules. Read from the store on each scrape
 * (every instance answers for the whole fleet).
 *
 * A scrape at 10,000 devices reads and parses every device's state and writes ~100,000 samples: done
 * at once it would hold the event loop for most of a second every scrape interval, and every API call
 * (a fleet page) would wait. So devices are read {@link CHUNK} at a time and each metric family
 * written in turn, with the event loop served between (as device-list.ts does for the whole list).
 */
const CHUNK = 500;
const STATES: readonly RolloutState[] = ['running', 'paused', 'completed', 'aborted', 'cancelled'];

const label = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export async function renderMetrics(store: FleetStore, inventory: Inventory): Promise<string> {
  const out: string[] = [];
  const gauge = (name: string, help: string, samples: ReadonlyArray<[Record<string, string>, number | null]>): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) {
      if (value === null) continue;
      const l = Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`).join(',');
      out.push(`${name}${l ? `{${l}}` : ''} ${value}`);
    }
  };
  const devices = await summaries(store, inventory);
  gauge('berth_fleet_devices', 'Devices known to the service.', [[{}, devices.length]]);
  gauge('berth_fleet_devices_online', 'Devices whose last status is online.', [[{}, devices.filter((d) => d.online).length]]);
  const rollouts = await store.listRollouts(500);
  gauge('berth_fleet_rollouts', 'Rollouts by state (the last 500).', STATES.map((s) => [{ state: s }, rollouts.filter((r) => r.state === s).length]));
  const active = rollouts.filter((r) => r.finishedAt === undefined);
  gauge('berth_fleet_rollout_devices', 'Devices of each unfinished rollout by outcome.', active.flatMap((r) => DEVICE_OUTCOMES.map((o): [Record<string, string>, number] => [{ rollout: r.id, outcome: o }, r.counts[o]])));
  const perDevice: ReadonlyArray<[string, string, (d: DeviceSummary) => number | null]> = [
    ['berth_device_online', '1 when the device is online.', (d) => (d.online ? 1 : 0)],
    ['berth_device_revision', 'The revision the device reports.', (d) => d.revision],
    ['berth_device_last_seen_seconds', 'When the device was last heard from (Unix time).', (d) => (d.lastSeen === null ? null : Date.parse(d.lastSeen) / 1000)],
    ['berth_device_cpu_percent', 'Host CPU use in the last telemetry sample.', (d) => d.cpuPercent],
    ['berth_device_memory_used_bytes', 'Host memory in use.', (d) => d.memoryUsedBytes],
    ['berth_device_memory_total_bytes', 'Host memory.', (d) => d.memoryTotalBytes],
    ['berth_device_temperature_celsius', 'SoC temperature.', (d) => d.temperatureC],
    ['berth_device_services_running', 'Services running.', (d) => d.servicesUp],
    ['berth_device_services_total', 'Services in the deployment.', (d) => d.servicesTotal],
  ];
  for (const [name, help, f] of perDevice) {
    await yieldToIo();
    gauge(name, help, devices.map((d) => [{ device: d.id }, f(d)]));
  }
  return `${out.join('\n')}\n`;
}

/** Every stored device's summary, read {@link CHUNK} at a time with the event loop served between. */
async function summaries(store: FleetStore, inventory: Inventory): Promise<DeviceSummary[]> {
  const ids = (await store.deviceIds()).sort();
  const out: DeviceSummary[] = [];
  for (let i = 0; i < ids.length; i += CHUNK) {
    if (i > 0) await yieldToIo();
    const chunk = ids.slice(i, i + CHUNK);
    const stored = new Map((await store.devicesByIds(chunk)).map((d) => [d.id, d]));
    // A device removed between the two reads is left out, as if the scrape had come after.
    for (const id of chunk) {
      const d = stored.get(id);
      if (d) out.push(deviceSummary(d, inventory));
    }
  }
  return out;
}
