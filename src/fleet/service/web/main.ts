import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Api } from './api.js';
import { Services, type AppServices } from './context.js';
import { html } from './html.js';
import { LiveStream } from './live.js';
import { href, useRoute, type Route } from './router.js';
import type { Session } from './types.js';
import { DevicePage } from './pages/device.js';
import { DeployPage } from './pages/deploy.js';
import { FleetPage } from './pages/fleet.js';
import { LoginPage } from './pages/login.js';
import { RolloutPage, RolloutsPage } from './pages/rollout.js';
import { TokensPage } from './pages/tokens.js';

// The dashboard's entry: asks the service who we are (GET /api/v1/session), shows the login when nobody,
// else opens the one live stream and renders the page the URL's hash names.

function App() {
  // undefined: still asking; null: signed out.
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const api = useMemo(() => new Api(() => setSession(null)), []);

  useEffect(() => {
    api.session().then((s) => setSession(s ?? null), (err: unknown) => setError(String(err)));
  }, [api]);

  if (error) return html`<main><p class="error">${error}</p></main>`;
  if (session === undefined) return html`<main><p class="muted">Loading…</p></main>`;
  if (session === null) return html`<${LoginPage} api=${api} onLogin=${setSession} />`;
  return html`<${SignedIn} api=${api} session=${session} onLogout=${() => setSession(null)} />`;
}

function SignedIn({ api, session, onLogout }: { readonly api: Api; readonly session: Session; readonly onLogout: () => void }) {
  const live = useMemo(() => new LiveStream(), []);
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    live.start();
    const off = live.onState(setConnected);
    return () => {
      off();
      live.stop();
    };
  }, [live]);
  const services: AppServices = useMemo(() => ({ api, live, session }), [api, live, session]);
  const route = useRoute();
  const logout = (): void => {
    api.logout().finally(onLogout);
  };

  return html`<${Services.Provider} value=${services}>
    <header class="top">
      <span class="brand">berth fleet</span>
      <nav><a href=${href.fleet()}>Devices</a><a href=${href.rollouts()}>Rollouts</a><a href=${href.deploy()}>Deploy</a>${session.scope === 'admin' && html`<a href=${href.tokens()}>Tokens</a>`}</nav>
      <span class=${connected ? 'live on' : 'live'} id="live">${connected ? 'live' : 'connecting…'}</span>
      <button class="secondary" onClick=${logout}>Log out</button>
    </header>
    <main>${page(route)}</main>
  <//>`;
}

function page(route: Route) {
  switch (route.page) {
    case 'fleet': return html`<${FleetPage} query=${route.query} />`;
    case 'device': return html`<${DevicePage} key=${route.id} id=${route.id} />`;
    case 'rollouts': return html`<${RolloutsPage} />`;
    case 'rollout': return html`<${RolloutPage} key=${route.id} id=${route.id} />`;
    case 'deploy': return html`<${DeployPage} query=${route.query} />`;
    case 'tokens': return html`<${TokensPage} />`;
    case 'not-found': return html`<h1>Not found</h1><p>No page at ${route.path}. <a href=${href.fleet()}>The fleet</a></p>`;
  }
}

render(html`<${App} />`, document.getElementById('app')!);
