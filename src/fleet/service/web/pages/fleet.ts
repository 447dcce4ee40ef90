import { html } from '../html.js';
import { useCoalesced, useLive, useLoad, useNow, useServices } from '../context.js';
import { ago, bytes, celsius, percent } from '../format.js';
import { href, navigate } from '../router.js';
import type { DeviceSummary } from '../types.js';
import { DeployStatusText, OnlineMark } from './parts.js';
import { anyFilter, filtersOf, menus, type Filters } from './fleet-filters.js';

/**
 * The fleet table. The service filters (GET /api/v1/devices?group=&label=&profile=); the page never
 * re-implements the matching. Live `device` messages update rows in place; one that may change which
 * devices match (an unknown device, or one whose groups, labels or profile moved) reloads the list,
 * coalesced to once a second.
 */
export function FleetPage({ query }: { readonly query: URLSearchParams }) {
  const { api } = useServices();
  const filters = filtersOf(query);
  const key = `${filters.group}|${filters.label}|${filters.profile}`;
  const rows = useLoad(key, () => api.get<{ devices: DeviceSummary[] }>('/devices', { ...filters }).then((r) => r.devices));
  // Every device, unfiltered, only to offer the choices in the filter menus.
  const all = useLoad('all', () => api.get<{ devices: DeviceSummary[] }>('/devices').then((r) => r.devices));
  const reloadRows = useCoalesced(rows.reload);
  const reloadAll = useCoalesced(all.reload);
  const now = useNow();

  useLive('device', (d) => {
    const sameShape = (old: DeviceSummary): boolean =>
      old.profile === d.profile && old.groups.join() === d.groups.join() && JSON.stringify(old.labels) === JSON.stringify(d.labels);
    const known = rows.data?.find((r) => r.id === d.id);
    if (known && sameShape(known)) rows.set((list) => list?.map((r) => (r.id === d.id ? d : r)));
    else if (!anyFilter(filters) && !known) rows.set((list) => [...(list ?? []), d].sort((a, b) => a.id.localeCompare(b.id)));
    else reloadRows();
    const seen = all.data?.find((r) => r.id === d.id);
    if (!seen || !sameShape(seen)) reloadAll();
  });

  const setFilter = (k: keyof Filters, v: string): void => {
    const q = new URLSearchParams(query);
    if (v) q.set(k, v);
    else q.delete(k);
    navigate(href.fleet(q));
  };
  const choices = menus(all.data ?? []);
  const list = rows.data;

  return html`
    <h1>Fleet</h1>
    <section class="card filters">
      <div class="row">
        <div><label for="f-group">Group</label>${menu('f-group', filters.group, choices.groups, (v) => setFilter('group', v))}</div>
        <div><label for="f-label">Label</label>${menu('f-label', filters.label, choices.labels, (v) => setFilter('label', v))}</div>
        <div><label for="f-profile">Board profile</label>${menu('f-profile', filters.profile, choices.profiles, (v) => setFilter('profile', v))}</div>
      </div>
    </section>
    ${rows.error && html`<p class="error">${rows.error}</p>`}
    ${list === undefined
      ? html`<p class="muted">Loading…</p>`
      : html`
        <p class="muted" id="fleet-count">${list.length} device${list.length === 1 ? '' : 's'}, ${list.filter((d) => d.online).length} online</p>
        <table class="data" id="fleet-table">
          <thead><tr>
            <th>Device</th><th>Online</th><th>Agent</th><th>Revision</th><th>Deploy</th><th>Services</th>
            <th>CPU</th><th>Memory</th><th>Temp.</th><th>Last seen</th>
          </tr></thead>
          <tbody>${list.map((d) => row(d, now))}</tbody>
        </table>`}
  `;
}

function row(d: DeviceSummary, now: number) {
  return html`<tr data-device=${d.id}>
    <td data-label="Device"><a href=${href.device(d.id)}>${d.id}</a></td>
    <td data-label="Online"><${OnlineMark} online=${d.online} /></td>
    <td data-label="Agent">${d.agentVersion ?? '–'}</td>
    <td data-label="Revision" class="num" data-col="revision"><span>${d.revision ?? '–'}${d.desiredRevision != null && d.desiredRevision !== d.revision ? html` <span class="muted">→ ${d.desiredRevision}</span>` : ''}</span></td>
    <td data-label="Deploy"><${DeployStatusText} status=${d.deployStatus} phase=${d.deployPhase} /></td>
    <td data-label="Services" class="num">${d.servicesUp ?? 0}/${d.servicesTotal ?? 0}</td>
    <td data-label="CPU" class="num">${percent(d.cpuPercent)}</td>
    <td data-label="Memory" class="num"><span>${bytes(d.memoryUsedBytes)}${d.memoryTotalBytes ? html`<span class="muted"> / ${bytes(d.memoryTotalBytes)}</span>` : ''}</span></td>
    <td data-label="Temp." class="num">${celsius(d.temperatureC)}</td>
    <td data-label="Last seen" title=${d.lastSeen ?? ''}>${ago(d.lastSeen, now)}</td>
  </tr>`;
}

function menu(id: string, value: string, options: readonly string[], onChange: (v: string) => void) {
  const opts = value && !options.includes(value) ? [value, ...options] : options;
  return html`<select id=${id} value=${value} onChange=${(e: Event) => onChange((e.target as HTMLSelectElement).value)}>
    <option value="">all</option>
    ${opts.map((o) => html`<option value=${o}>${o}</option>`)}
  </select>`;
}
