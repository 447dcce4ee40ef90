import { useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { html } from '../html.js';
import { useLoad, useServices } from '../context.js';
import { clock } from '../format.js';
import type { Scope, Token } from '../types.js';

const describe = (err: unknown): string => (err instanceof ApiError ? err.describe() : String(err));

/**
 * The API tokens (admin sessions only; the service refuses others, and the menu hides the page): each
 * token's id, scope, name, creation and last use, never its secret; revoke (which also ends the token's
 * dashboard sessions); and a new token, whose secret is shown once, right after it is made.
 */
export function TokensPage() {
  const { session } = useServices();
  // Not even asked for without admin: the service would refuse it (403).
  if (session.scope !== 'admin') return html`<h1>Tokens</h1><p class="muted">Managing tokens needs an admin session (this one is ${session.scope}).</p>`;
  return html`<${Tokens} />`;
}

function Tokens() {
  const { api } = useServices();
  const list = useLoad('tokens', () => api.get<{ tokens: Token[] }>('/tokens').then((r) => r.tokens));
  const [scope, setScope] = useState<Scope>('read');
  const [name, setName] = useState('');
  const [made, setMade] = useState<(Token & { token: string }) | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  const act = async (fn: () => Promise<void>): Promise<void> => {
    setBusy(true);
    try {
      await fn();
      setError(undefined);
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
      list.reload();
    }
  };
  const create = (e: Event): void => {
    e.preventDefault();
    void act(async () => {
      setMade(await api.post<Token & { token: string }>('/tokens', { scope, ...(name.trim() && { name: name.trim() }) }));
      setName('');
    });
  };
  const revoke = (t: Token): void => {
    if (!window.confirm(`Revoke token ${t.name} (${t.id})? Scripts and sessions using it stop working at once.`)) return;
    void act(async () => {
      await api.post(`/tokens/${encodeURIComponent(t.id)}/revoke`);
      if (made?.id === t.id) setMade(undefined);
    });
  };

  return html`
    <h1>Tokens</h1>
    <form class="card row" id="token-form" onSubmit=${create}>
      <div><label for="token-scope">Scope</label>
        <select id="token-scope" value=${scope} onChange=${(e: Event) => setScope((e.target as HTMLSelectElement).value as Scope)}>
          ${(['read', 'deploy', 'admin'] as const).map((s) => html`<option value=${s}>${s}</option>`)}
        </select></div>
      <div><label for="token-name">Name (optional)</label>
        <input id="token-name" maxlength="64" value=${name} onInput=${(e: Event) => setName((e.target as HTMLInputElement).value)} /></div>
      <button type="submit" disabled=${busy}>New token</button>
    </form>
    ${made && html`<section class="card" id="token-made">
      <p>Token <strong>${made.name}</strong> (${made.scope}). Copy it now: it is shown only this once.</p>
      <input readonly class="secret" id="token-secret" value=${made.token} onFocus=${(e: Event) => (e.target as HTMLInputElement).select()} />
    </section>`}
    ${(error ?? list.error) && html`<p class="error" id="token-error">${error ?? list.error}</p>`}
    <table class="data" id="tokens"><thead><tr><th>Id</th><th>Scope</th><th>Name</th><th>Created</th><th>Last used</th><th></th></tr></thead>
      <tbody>${(list.data ?? []).map((t) => html`<tr data-token=${t.id}>
        <td data-label="Id"><code>${t.id}</code></td><td data-label="Scope">${t.scope}</td><td data-label="Name">${t.name}</td>
        <td data-label="Created">${clock(t.createdAt)}</td><td data-label="Last used">${t.lastUsedAt ? clock(t.lastUsedAt) : 'never'}</td>
        <td><button class="secondary" disabled=${busy} onClick=${() => revoke(t)}>revoke</button></td></tr>`)}</tbody></table>
  `;
}
