import { html } from '../html.js';
import { useCoalesced, useLive, useLoad, useNow, useServices } from '../context.js';
import { ago, bytes, celsius, percent } from '../format.js';
import { href, navigate } from '../router.js';
import type { DevicePage, DeviceSummary, FleetFilters } from '../types.js';
import { DeployStatusText, OnlineMark } from './parts.js';
import { filtersOf, inPage, offersNew, type Filters } from './fleet-filters.js';

/** Devices per page unless the URL's `limit` says otherwise: a fleet table of 10,000 devices is read a page at a time. */
const PAGE = 100;

/** The URL's `limit` when it is a page size the API accepts (1–1000), else PAGE. */
const pageSize = (v: string | null): number => {
  const n = Number(v);
  return v !== null && Number.isInteger(n) && n >= 1 && n <= 1000 ? n : PAGE;
};

/**
 * The fleet table, a page at a time (GET /api/v1/devices?limit=&after=, the cursor in the URL as
 * `after` so a page can be linked and Back returns to the one before). The service filters (group,
 * label, profile) and the menus' choices come from GET /api/v1/device-filters: the page never
 * re-implements the matching, nor reads the whole fleet. Live `device` messages update rows in place;
 * one that may change which devices match the page (a device new to it whose id sorts into it, or one
 * whose groups, labels or profile moved) re-reads the page, coalesced to once a second.
 */
export function FleetPage({ query }: { readonly query: URLSearchParams }) {
  const { api } = useServices();
  const filters = filtersOf(query);
  const after = query.get('after') ?? '';
  const limit = pageSize(query.get('limit'));
  const key = `${filters.group}|${filters.label}|${filters.profile}|${after}|${limit}`;
  const page = useLoad(key, () => api.get<DevicePage>('/devices', { ...filters, limit: String(limit), after }));
  const menus = useLoad('device-filters', () => api.get<FleetFilters>('/device-filters'));
  const reloadPage = useCoalesced(page.reload);
  // The menus and the fleet's counts, an answer from memory on the service: re-read at most every 5 s.
  const reloadMenus = useCoalesced(menus.reload, 5000);
  const reloadMenusSoon = useCoalesced(menus.reload);
  const now = useNow();

  useLive('device', (d) => {
    const sameShape = (old: DeviceSummary): boolean =>
      old.profile === d.profile && old.groups.join() === d.groups.join() && JSON.stringify(old.labels) === JSON.stringify(d.labels);
    const p = page.data;
    const known = p?.devices.find((r) => r.id === d.id);
    if (known && sameShape(known)) page.set((old) => old && { ...old, devices: old.devices.map((r) => (r.id === d.id ? d : r)) });
    else if (p && (known || inPage(p, after, d.id))) reloadPage();
    // A new choice is re-read within a second; the fleet's counts (any device's change) within five.
    if (!menus.data || offersNew(menus.data, d)) reloadMenusSoon();
    else reloadMenus();
  });

  const go = (changes: Record<string, string>): void => {
    const q = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) {
      if (v) q.set(k, v);
      else q.delete(k);
    }
    navigate(href.fleet(q));
  };
  // Another filter starts again at the first page.
  const setFilter = (k: keyof Filters, v: string): void => go({ [k]: v, after: '' });
  const choices = menus.data ?? { groups: [], labels: [], profiles: [], total: 0, online: 0 };
  const list = page.data?.devices;
  const next = page.data?.next ?? null;

  return html`
    <h1>Fleet</h1>
    <section class="card filters">
      <div class="row">
        <div><label for="f-group">Group</label>${menu('f-group', filters.group, choices.groups, (v) => setFilter('group', v))}</div>
        <div><label for="f-label">Label</label>${menu('f-label', filters.label, choices.labels, (v) => setFilter('label', v))}</div>
        <div><label for="f-profile">Board profile</label>${menu('f-profile', filters.profile, choices.profiles, (v) => setFilter('profile', v))}</div>
      </div>
    </section>
    ${page.error && html`<p class="error">${page.error}</p>`}
    ${list === undefined
      ? html`<p class="muted">Loading…</p>`
      : html`
        <p class="muted" id="fleet-count">${shown(list, after, next !== null)}${menus.data ? ` · the fleet: ${menus.data.total}, ${menus.data.online} online` : ''}</p>
        <table class="data" id="fleet-table">
          <thead><tr>
            <th>Device</th><th>Online</th><th>Agent</th><th>Revision</th><th>Deploy</th><th>Services</th>
            <th>CPU</th><th>Memory</th><th>Temp.</th><th>Last seen</th>
          </tr></thead>
          <tbody>${list.map((d) => row(d, now))}</tbody>
        </table>
        <div class="row pager">
          ${after && html`<button class="secondary" id="fleet-first" onClick=${() => go({ after: '' })}>First page</button>`}
          ${next !== null && html`<button id="fleet-next" onClick=${() => go({ after: next })}>Next ${limit}</button>`}
        </div>`}
  `;
}

/** "3 devices, 2 online", or for one page among several "100 devices shown (from d-100), 97 online". */
function shown(list: readonly DeviceSummary[], after: string, more: boolean): string {
  const n = `${list.length} device${list.length === 1 ? '' : 's'}`;
  const paged = after !== '' || more;
  return `${paged ? `${n} shown${list[0] ? ` (from ${list[0].id})` : ''}` : n}, ${list.filter((d) => d.online).length} online`;
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
