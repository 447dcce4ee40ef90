import { useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { html } from '../html.js';
import { useLive, useLoad, useServices } from '../context.js';
import { clock } from '../format.js';
import { href } from '../router.js';
import type { Outcome, Rollout, RolloutSummary } from '../types.js';
import { finishedShare, ProgressBar, StatusText } from './parts.js';

/** The rollouts, newest first, with live state and progress. */
export function RolloutsPage() {
  const { api } = useServices();
  const list = useLoad('rollouts', () => api.get<{ rollouts: RolloutSummary[] }>('/rollouts').then((r) => r.rollouts));
  useLive('rollout', (r) => {
    list.set((old) => (old?.some((x) => x.id === r.id) ? old.map((x) => (x.id === r.id ? r : x)) : [r, ...(old ?? [])]));
  });
  return html`
    <div class="row" style="justify-content:space-between"><h1>Rollouts</h1><a href=${href.deploy()}>New deploy</a></div>
    ${list.error && html`<p class="error">${list.error}</p>`}
    ${list.data?.length === 0 && html`<p class="muted">No rollouts yet.</p>`}
    <table class="data" id="rollouts"><thead><tr><th>Rollout</th><th>State</th><th>Progress</th><th>Created</th></tr></thead>
      <tbody>${(list.data ?? []).map((r) => html`<tr data-rollout=${r.id}>
        <td data-label="Rollout"><a href=${href.rollout(r.id)}>${r.name}</a></td>
        <td data-label="State"><${StatusText} status=${r.state} /></td>
        <td data-label="Progress" style="min-width:8rem"><${ProgressBar} rollout=${r} /></td>
        <td data-label="Created">${clock(r.createdAt)}</td></tr>`)}</tbody></table>
  `;
}

/** "3 applied · 0 failed · 1 in progress · 2 waiting — of 6", with not-sent and superseded when there are any. */
function counts(r: RolloutSummary): string {
  const c = r.counts;
  const parts = [`${c.applied} applied`, `${c.failed + c['rolled-back'] + c.rejected + c['timed-out']} failed`, `${c.sent} in progress`, `${c.pending} waiting`];
  if (c['not-sent']) parts.push(`${c['not-sent']} not sent`);
  if (c.superseded) parts.push(`${c.superseded} superseded`);
  return `${parts.join(' · ')} — of ${c.total}`;
}

const actions: Record<string, readonly ('pause' | 'resume' | 'cancel')[]> = { running: ['pause', 'cancel'], paused: ['resume', 'cancel'] };

/** Devices per page of a rollout's table. */
const PAGE = 100;
/** The outcome filter's choices, in the order a rollout moves through them (those with no device are left out). */
const OUTCOMES: readonly Outcome[] = ['pending', 'sent', 'applied', 'failed', 'rolled-back', 'rejected', 'timed-out', 'superseded', 'not-sent'];

/**
 * One rollout: a progress bar and counts that follow the live `rollout` messages, and its devices' outcomes
 * a page at a time (GET /api/v1/rollouts/{id}?limit=&after=, in sending order), each row following
 * `rollout-device`; pause, resume and cancel as its state allows.
 */
export function RolloutPage({ id }: { readonly id: string }) {
  const { api, session } = useServices();
  const enc = encodeURIComponent(id);
  // The `after` of each page shown so far: the last is the current page's, the one before it Previous's.
  const [cursors, setCursors] = useState<readonly number[]>([-1]);
  // Only the devices with this outcome ('' for all), filtered and paged by the service.
  const [outcome, setOutcome] = useState<Outcome | ''>('');
  const after = cursors[cursors.length - 1]!;
  const pageQuery = `?limit=${PAGE}&after=${after}${outcome === '' ? '' : `&outcome=${outcome}`}`;
  const r = useLoad(`${id}|${after}|${outcome}`, () => api.get<Rollout>(`/rollouts/${enc}${pageQuery}`));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  useLive('rollout', (s) => {
    if (s.id === id) r.set((old) => old && { ...old, ...s, devices: old.devices, next: old.next ?? null });
  });
  useLive('rollout-device', ({ rollout, device }) => {
    if (rollout !== id) return;
    // Every device of a rollout has its row from the start: one not on this page is on another.
    r.set((old) => old && { ...old, devices: old.devices.map((d) => (d.device === device.device ? device : d)) });
  });

  const act = async (a: string): Promise<void> => {
    setBusy(true);
    try {
      const next = await api.post<Rollout>(`/rollouts/${enc}/${a}${pageQuery}`);
      r.set(() => next);
      setError(undefined);
    } catch (err) {
      setError(err instanceof ApiError ? err.describe() : String(err));
    } finally {
      setBusy(false);
    }
  };

  const ro = r.data;
  if (!ro) return html`<h1>Rollout ${id}</h1>${r.error ? html`<p class="error">${r.error}</p>` : html`<p class="muted">Loading…</p>`}`;
  const c = ro.counts;
  const canAct = session.scope !== 'read';
  return html`
    <h1>${ro.name} <${StatusText} status=${ro.state} /></h1>
    <section class="card" id="rollout-progress" data-state=${ro.state} data-done=${Math.round(finishedShare(ro) * 100)}>
      <${ProgressBar} rollout=${ro} />
      <p id="rollout-counts">${counts(ro)}</p>
      ${ro.abortReason && html`<p class="error">${ro.abortReason}</p>`}
      <div class="row">${(actions[ro.state] ?? []).map((a) => html`<button class=${a === 'cancel' ? 'secondary' : ''} disabled=${busy || !canAct} onClick=${() => act(a)}>${a}</button>`)}</div>
      ${error && html`<p class="error">${error}</p>`}
    </section>
    <section class="card">
      <dl class="facts">
        <dt>Created</dt><dd>${clock(ro.createdAt)}${ro.createdBy ? ` by ${ro.createdBy}` : ''}</dd>
        ${ro.finishedAt && html`<dt>Finished</dt><dd>${clock(ro.finishedAt)}</dd>`}
        ${Object.entries(ro.images).map(([s, img]) => html`<dt>${s}</dt><dd>${img}</dd>`)}
      </dl>
    </section>
    <div class="row">
      <label>Outcome <select id="rollout-outcome" value=${outcome} onChange=${(e: Event) => {
        setOutcome((e.target as HTMLSelectElement).value as Outcome | '');
        setCursors([-1]);
      }}>
        <option value="">all (${c.total})</option>
        ${OUTCOMES.filter((o) => c[o] > 0 || o === outcome).map((o) => html`<option value=${o}>${o} (${c[o]})</option>`)}
      </select></label>
    </div>
    <table class="data" id="rollout-devices"><thead><tr><th>Device</th><th>Revision</th><th>Outcome</th><th>Phase</th><th>Sent</th><th>Error</th></tr></thead>
      <tbody>${ro.devices.map((d) => html`<tr data-device=${d.device} data-outcome=${d.outcome}>
        <td data-label="Device"><a href=${href.device(d.device)}>${d.device}</a></td>
        <td data-label="Revision" class="num">${d.revision}</td>
        <td data-label="Outcome"><${StatusText} status=${d.outcome} /></td>
        <td data-label="Phase">${d.phase ?? '–'}</td>
        <td data-label="Sent">${clock(d.sentAt)}</td>
        <td data-label="Error" class=${d.error ? 'error' : ''}>${d.error ?? ''}</td></tr>`)}</tbody></table>
    <div class="row pager">
      ${cursors.length > 1 && html`<button class="secondary" id="rollout-prev" onClick=${() => setCursors((c) => c.slice(0, -1))}>Previous ${PAGE}</button>`}
      ${ro.next != null && html`<button id="rollout-next" onClick=${() => setCursors((c) => [...c, ro.next!])}>Next ${PAGE}</button>`}
    </div>
  `;
}
