import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api.js';
import { html } from '../html.js';
import { useServices } from '../context.js';
import type { CommandResult, Device, LogLine } from '../types.js';

/** POST /devices/{id}/commands: the device's answer, or a thrown ApiError. */
function useCommand(device: string) {
  const { api } = useServices();
  return (body: { action: string; service?: string; tail?: number }): Promise<CommandResult> =>
    api.post<CommandResult>(`/devices/${encodeURIComponent(device)}/commands`, body);
}

/** The service a panel acts on: the one chosen while it exists, else the first the device reports. */
function useServiceChoice(services: readonly string[]): { readonly name: string; readonly choose: (s: string) => void } {
  const [chosen, choose] = useState('');
  return { name: services.includes(chosen) ? chosen : services[0] ?? '', choose };
}

const describe = (err: unknown): string => (err instanceof ApiError ? err.describe() : String(err));

/** Restart, stop or start a service, or ping the device; needs the deploy scope (the service checks). */
export function Commands({ device }: { readonly device: Device }) {
  const { session } = useServices();
  const send = useCommand(device.id);
  const [busy, setBusy] = useState(false);
  const [last, setLast] = useState<string | undefined>(undefined);
  const services = Object.keys(device.reported?.services ?? {});
  const service = useServiceChoice(services);
  const readOnly = session.scope === 'read';

  const run = async (action: string, withService: boolean): Promise<void> => {
    setBusy(true);
    try {
      const r = await send({ action, ...(withService && { service: service.name }) });
      setLast(r.status === 'ok' ? `${action}: ok` : `${action}: ${r.status} (${r.result}) ${r.reason ?? ''}`);
    } catch (err) {
      setLast(`${action}: ${describe(err)}`);
    } finally {
      setBusy(false);
    }
  };

  return html`<section class="card" id="commands">
    <h2>Commands</h2>
    ${readOnly && html`<p class="muted">This session's scope is read: commands need deploy.</p>`}
    <div class="row">
      <select aria-label="service" value=${service.name} onChange=${(e: Event) => service.choose((e.target as HTMLSelectElement).value)}>
        ${services.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      ${['restart', 'stop', 'start'].map((a) => html`<button disabled=${busy || readOnly || !service.name} onClick=${() => run(a, true)}>${a}</button>`)}
      <button class="secondary" disabled=${busy || readOnly} onClick=${() => run('ping', false)}>ping</button>
    </div>
    ${last && html`<p id="command-result">${last}</p>`}
  </section>`;
}

/** How many lines the panel keeps; older ones scroll away. */
const KEEP = 2000;
/** The note under the logs for each `mode` of the follow stream (src/fleet/log-follow.ts); none while it streams. */
const MODE_NOTES: Readonly<Record<string, string | undefined>> = {
  poll: 'This agent cannot stream logs: asking again every 3 s.',
  waiting: 'The device is offline or its agent is restarting: the follow resumes when it is back.',
};

/**
 * A service's last log lines through the `logs` command ("Show"), and "follow": one session per viewer
 * (POST /devices/{id}/logs/follow, Server-Sent Events) that the service keeps with the device and that
 * ends when the box is unchecked, the page is left, or the device ends it. The service sends only new
 * lines, so they are appended as they come.
 */
export function Logs({ device }: { readonly device: Device }) {
  const { session, api } = useServices();
  const send = useCommand(device.id);
  const { name: service, choose } = useServiceChoice(Object.keys(device.reported?.services ?? {}));
  const [lines, setLines] = useState<LogLine[]>([]);
  const [follow, setFollow] = useState(false);
  const [note, setNote] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const pre = useRef<HTMLPreElement>(null);

  const show = async (): Promise<void> => {
    if (!service) return;
    try {
      const r = await send({ action: 'logs', service, tail: 200 });
      if (r.status !== 'ok') throw new Error(`${r.status} (${r.result}) ${r.reason ?? ''}`);
      setLines(((r.data as { lines?: LogLine[] } | undefined)?.lines ?? []).slice(-KEEP));
      setError(undefined);
    } catch (err) {
      setError(describe(err));
    }
  };

  useEffect(() => setLines([]), [service]);
  useEffect(() => {
    if (!follow || !service) return;
    const abort = new AbortController();
    setLines([]);
    setError(undefined);
    setNote(undefined);
    api.stream(`/devices/${encodeURIComponent(device.id)}/logs/follow`, { service, tail: 200 }, (event, data) => {
      if (event === 'lines') setLines((old) => [...old, ...(data as { lines: LogLine[] }).lines].slice(-KEEP));
      else if (event === 'mode') setNote(MODE_NOTES[(data as { mode: string }).mode]);
      else if (event === 'end') setNote(`Follow ended: ${(data as { reason: string }).reason}`);
    }, abort.signal).catch((err: unknown) => setError(describe(err))).finally(() => {
      if (!abort.signal.aborted) setFollow(false);
    });
    return () => abort.abort();
  }, [follow, service]);
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [lines]);

  const readOnly = session.scope === 'read';
  return html`<section class="card" id="logs">
    <h2>Logs</h2>
    <div class="row">
      <select aria-label="log service" value=${service} onChange=${(e: Event) => choose((e.target as HTMLSelectElement).value)}>
        ${Object.keys(device.reported?.services ?? {}).map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <button disabled=${!service || readOnly || follow} onClick=${() => void show()}>Show</button>
      <label style="margin:0"><input type="checkbox" checked=${follow} disabled=${!service || readOnly}
        onChange=${(e: Event) => setFollow((e.target as HTMLInputElement).checked)} /> follow</label>
    </div>
    ${error && html`<p class="error">${error}</p>`}
    ${note && html`<p class="muted" id="logs-note">${note}</p>`}
    <pre class="log" ref=${pre}>${lines.map((l) => `${l.time} ${l.stream === 'stderr' ? '! ' : ''}${l.text}\n`).join('')}</pre>
  </section>`;
}
