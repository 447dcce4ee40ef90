import type { Inventory } from '../inventory.js';
import { deviceSummary } from './present.js';
import { DEVICE_OUTCOMES, type FleetStore, type RolloutState } from './store.js';

/**
 * GET /metrics in the Prometheus text format (0.0.4): fleet gauges and per-device gauges labelled
 * `device`, so a Grafana pointed at it needs no recording rules. Read from the store on each scrape
 * (every instance answers for the whole fleet).
 */
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
  const devices = (await store.listDevices()).map((d) => deviceSummary(d, inventory));
  gauge('berth_fleet_devices', 'Devices known to the service.', [[{}, devices.length]]);
  gauge('berth_fleet_devices_online', 'Devices whose last status is online.', [[{}, devices.filter((d) => d.online).length]]);
  const rollouts = await store.listRollouts(500);
  gauge('berth_fleet_rollouts', 'Rollouts by state (the last 500).', STATES.map((s) => [{ state: s }, rollouts.filter((r) => r.state === s).length]));
  const active = rollouts.filter((r) => r.finishedAt === undefined);
  gauge('berth_fleet_rollout_devices', 'Devices of each unfinished rollout by outcome.', active.flatMap((r) => DEVICE_OUTCOMES.map((o): [Record<string, string>, number] => [{ rollout: r.id, outcome: o }, r.counts[o]])));
  const per = (name: string, help: string, f: (d: (typeof devices)[number]) => number | null): void => gauge(name, help, devices.map((d) => [{ device: d.id }, f(d)]));
  per('berth_device_online', '1 when the device is online.', (d) => (d.online ? 1 : 0));
  per('berth_device_revision', 'The revision the device reports.', (d) => d.revision);
  per('berth_device_last_seen_seconds', 'When the device was last heard from (Unix time).', (d) => (d.lastSeen === null ? null : Date.parse(d.lastSeen) / 1000));
  per('berth_device_cpu_percent', 'Host CPU use in the last telemetry sample.', (d) => d.cpuPercent);
  per('berth_device_memory_used_bytes', 'Host memory in use.', (d) => d.memoryUsedBytes);
  per('berth_device_memory_total_bytes', 'Host memory.', (d) => d.memoryTotalBytes);
  per('berth_device_temperature_celsius', 'SoC temperature.', (d) => d.temperatureC);
  per('berth_device_services_running', 'Services running.', (d) => d.servicesUp);
  per('berth_device_services_total', 'Services in the deployment.', (d) => d.servicesTotal);
  return `${out.join('\n')}\n`;
}
