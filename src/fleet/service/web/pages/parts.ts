import { html } from '../html.js';
import type { DeployStatus, Outcome, RolloutSummary } from '../types.js';

// Small pieces several pages show the same way.

export function OnlineMark({ online }: { readonly online: boolean }) {
  return html`<span class="online" data-online=${String(online)}><span class=${online ? 'dot on' : 'dot'}></span> ${online ? 'online' : 'offline'}</span>`;
}

const tone: Record<string, string> = {
  applied: 'ok', completed: 'ok', running: '', applying: '', sent: '', pending: 'muted', paused: 'warn',
  failed: 'bad', 'rolled-back': 'bad', rejected: 'bad', aborted: 'bad', 'timed-out': 'bad',
  superseded: 'muted', cancelled: 'muted', 'not-sent': 'muted',
};

/** A deploy status, rollout state or device outcome, coloured by how good it is. */
export function StatusText({ status }: { readonly status: string | null | undefined }) {
  return status ? html`<span class=${`status ${tone[status] ?? ''}`}>${status}</span>` : html`<span class="muted">–</span>`;
}

export function DeployStatusText({ status, phase }: { readonly status: DeployStatus | null | undefined; readonly phase: string | null | undefined }) {
  return html`<span><${StatusText} status=${status} />${status === 'applying' && phase ? html` <span class="muted">(${phase})</span>` : ''}</span>`;
}

/** Segments in the order they fill the bar: done well, done badly, then still open. */
const good: readonly Outcome[] = ['applied'];
const bad: readonly Outcome[] = ['failed', 'rolled-back', 'rejected', 'timed-out'];

/** How far a rollout is: the share of devices with a final outcome (applied, failed, …, not sent). */
export function finishedShare(r: RolloutSummary): number {
  const c = r.counts;
  return c.total === 0 ? 1 : (c.total - c.pending - c.sent) / c.total;
}

export function ProgressBar({ rollout }: { readonly rollout: RolloutSummary }) {
  const c = rollout.counts;
  const sum = (keys: readonly Outcome[]): number => keys.reduce((n, k) => n + (c[k] ?? 0), 0);
  const pct = (n: number): string => `${c.total === 0 ? 0 : (100 * n) / c.total}%`;
  const done = Math.round(finishedShare(rollout) * 100);
  return html`<div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${done}
      title=${`${sum(good)} applied, ${sum(bad)} failed, ${c.pending + c.sent} open of ${c.total}`}>
    <span class="applied" style=${{ width: pct(sum(good)) }}></span>
    <span class="failed" style=${{ width: pct(sum(bad)) }}></span>
    <span class="pending" style=${{ width: pct(c.sent) }}></span>
  </div>`;
}
