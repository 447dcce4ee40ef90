import { useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { html } from '../html.js';
import { useServices } from '../context.js';
import { href, navigate } from '../router.js';
import type { Rollout, RolloutRequest } from '../types.js';

type Target = 'all' | 'group' | 'devices';

/**
 * Starts a rollout from a compose file (uploaded or pasted): POST /api/v1/rollouts with the YAML as text.
 * The service reads and checks the file and resolves every image to its digest; its refusal is shown as
 * it words it (naming the key), so nothing here parses compose. `?group=` preselects a group.
 */
export function DeployPage({ query }: { readonly query: URLSearchParams }) {
  const { api, session } = useServices();
  const [compose, setCompose] = useState('');
  const [name, setName] = useState('');
  const [target, setTarget] = useState<Target>(query.get('group') ? 'group' : 'all');
  const [group, setGroup] = useState(query.get('group') ?? '');
  const [devices, setDevices] = useState('');
  const [rate, setRate] = useState('');
  const [abortAfter, setAbortAfter] = useState('');
  const [timeout, setTimeoutText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);

  const onFile = async (e: Event): Promise<void> => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file) return;
    setCompose(await file.text());
    if (!name) setName(file.name.replace(/\.(ya?ml)$/i, ''));
  };

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const body: RolloutRequest = {
      compose,
      ...(name.trim() && { name: name.trim() }),
      ...(target === 'all' && { all: true }),
      ...(target === 'group' && { group: group.trim() }),
      ...(target === 'devices' && { devices: devices.split(/[\s,]+/).filter(Boolean) }),
      ...(rate.trim() && { rate: rate.trim() }),
      ...(abortAfter.trim() && { abortAfterPct: Number(abortAfter) }),
      ...(timeout.trim() && { timeout: timeout.trim() }),
    };
    setBusy(true);
    try {
      // Only the id is needed here (the rollout page reads its own page of devices): not every device back.
      const r = await api.post<Rollout>('/rollouts?limit=1', body);
      navigate(href.rollout(r.id));
    } catch (err) {
      setError(err instanceof ApiError ? err.describe() : String(err));
    } finally {
      setBusy(false);
    }
  };

  const field = (id: string, label: string, value: string, set: (v: string) => void, placeholder = '') => html`
    <div><label for=${id}>${label}</label><input id=${id} value=${value} placeholder=${placeholder} onInput=${(e: Event) => set((e.target as HTMLInputElement).value)} /></div>`;

  return html`
    <h1>New deploy</h1>
    ${session.scope === 'read' && html`<p class="error">This session's scope is read: deploying needs deploy.</p>`}
    <form class="card" id="deploy-form" onSubmit=${submit}>
      <label for="compose-file">Compose file</label>
      <input type="file" id="compose-file" accept=".yaml,.yml,text/yaml" onChange=${onFile} />
      <label for="compose">… or paste it</label>
      <textarea id="compose" rows="14" spellcheck="false" required value=${compose} onInput=${(e: Event) => setCompose((e.target as HTMLTextAreaElement).value)}
        placeholder=${'services:\n  web:\n    image: registry.example/app:1.2'}></textarea>
      <div class="row">
        ${field('name', 'Name', name, setName, 'the project name')}
        <div><label for="target">Devices</label>
          <select id="target" value=${target} onChange=${(e: Event) => setTarget((e.target as HTMLSelectElement).value as Target)}>
            <option value="all">all</option><option value="group">a group</option><option value="devices">listed devices</option>
          </select></div>
        ${target === 'group' && field('group', 'Group', group, setGroup, 'canary')}
        ${target === 'devices' && field('devices', 'Device ids', devices, setDevices, 'pi-1, pi-2')}
      </div>
      <div class="row">
        ${field('rate', 'Rate', rate, setRate, 'all at once, or 10/min')}
        ${field('abort-after', 'Abort after % failed', abortAfter, setAbortAfter, 'never')}
        ${field('timeout', 'Timeout per device', timeout, setTimeoutText, '10m')}
      </div>
      <p><button type="submit" disabled=${busy || !compose.trim() || session.scope === 'read'}>Deploy</button></p>
      ${error && html`<p class="error" id="deploy-error">${error}</p>`}
    </form>
  `;
}
