import type { FleetChange, FleetView } from './view.js';

/**
 * One line of `berth fleet watch` for a change, or undefined when it changes nothing worth a line
 * (a repeated reported with the same revision and status, telemetry unless asked for). Call it
 * before the change is applied to `view`, so it can compare with the previous state.
 */
export function describeChange(c: FleetChange, view: FleetView, telemetry: boolean): string | undefined {
  const before = view.devices.get(c.device);
  switch (c.kind) {
    case 'status':
      return before?.online === c.status.online ? undefined : `${c.device}: ${c.status.online ? 'online' : 'offline'}${c.status.agent ? ` (agent ${c.status.agent.version})` : ''}`;
    case 'reported': {
      const r = c.reported;
      const prev = before?.reported;
      const up = Object.values(r.services).filter((s) => s.state === 'running').length;
      const servicesSame = prev !== undefined && JSON.stringify(prev.services) === JSON.stringify(r.services);
      if (prev && prev.revision === r.revision && prev.status === r.status && servicesSame) return undefined;
      return `${c.device}: revision ${r.revision} ${r.status}, services ${up}/${Object.keys(r.services).length} up${r.error ? ` (${r.error.message})` : ''}`;
    }
    case 'desired':
      return before?.desiredRevision === c.revision ? undefined : `${c.device}: desired revision ${c.revision}`;
    case 'progress':
      return `${c.device}: revision ${c.progress.revision} ${c.progress.phase}${c.progress.service ? ` ${c.progress.service}` : ''}`;
    case 'event': {
      const { kind, time: _time, ...rest } = c.event;
      return `${c.device}: event ${String(kind)} ${JSON.stringify(rest)}`;
    }
    case 'telemetry': {
      if (!telemetry) return undefined;
      const t = c.telemetry;
      const mem = t.memoryUsedBytes !== undefined && t.memoryTotalBytes ? `${((t.memoryUsedBytes * 100) / t.memoryTotalBytes).toFixed(1)}%` : '-';
      return `${c.device}: cpu ${t.cpuPercent?.toFixed(1) ?? '-'}% memory ${mem} temp ${t.temperatureC?.toFixed(1) ?? '-'}°C`;
    }
    case 'result':
      return `${c.device}: command ${c.result.id} ${c.result.status} (${c.result.result})`;
  }
}
