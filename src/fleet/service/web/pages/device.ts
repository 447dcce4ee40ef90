import { useState } from 'preact/hooks';
import { html } from '../html.js';
import { TimeChart, type Series } from '../chart.js';
import { useCoalesced, useLive, useLoad, useNow, useServices } from '../context.js';
import { ago, bytes, celsius, clock, percent } from '../format.js';
import type { Device, FleetEvent, TelemetryPoint } from '../types.js';
import { DeployStatusText, OnlineMark, StatusText } from './parts.js';
import { Commands, Logs } from './device-actions.js';

const ranges = { '1 h': 3600, '6 h': 6 * 3600, '24 h': 86400, '7 d': 7 * 86400 } as const;
type Range = keyof typeof ranges;

/**
 * One device: its facts, telemetry charts over a chosen range, services, events, logs and commands.
 * A live `device` message for it refreshes the facts and the charts (coalesced: at most once per two
 * seconds); a live `event` for it is prepended to the list.
 */
export function DevicePage({ id }: { readonly id: string }) {
  const { api } = useServices();
  const enc = encodeURIComponent(id);
  const [range, setRange] = useState<Range>('1 h');
  const device = useLoad(id, () => api.get<Device>(`/devices/${enc}`));
  const telemetry = useLoad(`${id}|${range}`, () =>
    api.get<{ points: TelemetryPoint[] }>(`/devices/${enc}/telemetry`, { from: new Date(Date.now() - ranges[range] * 1000).toISOString() }).then((r) => r.points));
  const events = useLoad(id, () => api.get<{ events: FleetEvent[] }>(`/devices/${enc}/events`, { limit: '50' }).then((r) => r.events));
  const refresh = useCoalesced(() => {
    device.reload();
    telemetry.reload();
  }, 2000);
  const now = useNow();

  useLive('device', (d) => {
    if (d.id === id) refresh();
  });
  useLive('event', (e) => {
    if (e.device === id) events.set((list) => [e, ...(list ?? []).filter((x) => x.seq !== e.seq)].slice(0, 200));
  });

  const d = device.data;
  if (device.error && !d) return html`<h1>${id}</h1><p class="error">${device.error}</p>`;
  if (!d) return html`<h1>${id}</h1><p class="muted">Loading…</p>`;
  const services = Object.entries(d.reported?.services ?? {});
  const points = telemetry.data ?? [];

  return html`
    <h1>${d.id} <${OnlineMark} online=${d.online} /></h1>
    <div class="grid">
      <section class="card">
        <dl class="facts">
          <dt>Last seen</dt><dd title=${clock(d.lastSeen)}>${ago(d.lastSeen, now)}</dd>
          <dt>Agent</dt><dd>${d.agentVersion ?? '–'}</dd>
          <dt>Board</dt><dd>${d.model ?? '–'} <span class="muted">${d.profile ?? ''}</span></dd>
          <dt>Revision</dt><dd>${d.revision ?? '–'}${d.desiredRevision != null && d.desiredRevision !== d.revision ? ` → ${d.desiredRevision}` : ''}</dd>
          <dt>Deploy</dt><dd><${DeployStatusText} status=${d.deployStatus} phase=${d.deployPhase} /></dd>
          <dt>CPU</dt><dd>${percent(d.cpuPercent)}</dd>
          <dt>Memory</dt><dd>${bytes(d.memoryUsedBytes)} / ${bytes(d.memoryTotalBytes)}</dd>
          <dt>Temperature</dt><dd>${celsius(d.temperatureC)}</dd>
          <dt>Groups</dt><dd>${d.groups.join(', ') || '–'}</dd>
          <dt>Labels</dt><dd>${Object.entries(d.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '–'}</dd>
        </dl>
        ${d.reported?.error && html`<p class="error">${d.reported.error.message}</p>`}
      </section>
      <section class="card">
        <h2>Services</h2>
        ${services.length === 0
          ? html`<p class="muted">No services deployed.</p>`
          : html`<table class="data" id="services"><thead><tr><th>Service</th><th>State</th><th>Health</th><th>Restarts</th><th>Image</th></tr></thead>
              <tbody>${services.map(([name, s]) => html`<tr>
                <td data-label="Service">${name}</td><td data-label="State"><${StatusText} status=${s.state} /></td>
                <td data-label="Health">${s.health ?? '–'}</td><td data-label="Restarts" class="num">${s.restarts ?? 0}</td>
                <td data-label="Image" style="overflow-wrap:anywhere">${s.image ?? '–'}</td></tr>`)}</tbody></table>`}
      </section>
    </div>
    <section class="card">
      <div class="row" style="justify-content:space-between"><h2>Telemetry</h2>
        <select aria-label="range" id="range" value=${range} onChange=${(e: Event) => setRange((e.target as HTMLSelectElement).value as Range)}>
          ${Object.keys(ranges).map((r) => html`<option value=${r}>${r}</option>`)}
        </select></div>
      ${telemetry.error && html`<p class="error">${telemetry.error}</p>`}
      ${points.length === 0 && telemetry.data ? html`<p class="muted">No telemetry in this range.</p>` : ''}
      <div class="grid">
        <${TimeChart} title="CPU" color="#0b63ce" series=${seriesOf(points, (p) => p.cpuPercent)} format=${(v: number | null) => percent(v)} />
        <${TimeChart} title="Memory used" color="#8250df" series=${seriesOf(points, (p) => p.memoryUsedBytes)} format=${(v: number | null) => bytes(v)} />
        <${TimeChart} title="Temperature" color="#cf222e" series=${seriesOf(points, (p) => p.temperatureC)} format=${(v: number | null) => celsius(v)} />
      </div>
    </section>
    <div class="grid">
      <${Commands} device=${d} />
      <${Logs} device=${d} />
    </div>
    <section class="card">
      <h2>Events</h2>
      ${events.error && html`<p class="error">${events.error}</p>`}
      ${events.data?.length === 0 && html`<p class="muted">No events yet.</p>`}
      <table class="data" id="events"><thead><tr><th>Time</th><th>Event</th><th>Detail</th></tr></thead>
        <tbody>${(events.data ?? []).map((e) => html`<tr><td data-label="Time">${clock(e.time)}</td><td data-label="Event">${e.type}</td>
          <td data-label="Detail" style="overflow-wrap:anywhere">${detail(e)}</td></tr>`)}</tbody></table>
    </section>
  `;
}

function seriesOf(points: readonly TelemetryPoint[], pick: (p: TelemetryPoint) => number | null | undefined): Series {
  return { times: points.map((p) => Date.parse(p.time) / 1000), values: points.map((p) => pick(p) ?? null) };
}

/** An event's data in one line: its message or error when it has one, else its JSON. */
function detail(e: FleetEvent): string {
  const d = e.data as { message?: string; error?: { message?: string }; revision?: number } | undefined;
  if (!d) return '';
  return d.error?.message ?? d.message ?? JSON.stringify(d);
}
