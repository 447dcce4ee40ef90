import { useState } from 'preact/hooks';
import { ApiError, type Api } from '../api.js';
import { html } from '../html.js';
import type { Session } from '../types.js';

/**
 * The login: an API token (from `berth fleet token create`) is exchanged once for an HttpOnly session
 * cookie (POST /api/v1/login); the token is not kept by the page afterwards.
 */
export function LoginPage({ api, onLogin }: { readonly api: Api; readonly onLogin: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    try {
      onLogin(await api.login(token.trim()));
    } catch (err) {
      setError(err instanceof ApiError ? err.describe() : String(err));
      setBusy(false);
    }
  };

  return html`<main><form class="card login" id="login" onSubmit=${submit}>
    <h1>berth fleet</h1>
    <label for="token">API token</label>
    <input id="token" type="password" autocomplete="current-password" required value=${token}
      onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)} />
    <p class="muted">Make one with <code>berth fleet token create --scope read|deploy|admin</code>.</p>
    <button type="submit" disabled=${busy || !token.trim()}>Log in</button>
    ${error && html`<p class="error" id="login-error">${error}</p>`}
  </form></main>`;
}
