import type { Session } from './types.js';

/** An error the API answered with (`{"error": {code, message, hint?}}`), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly hint?: string) {
    super(message);
  }

  /** One line for the page: the message and, when the service gave one, its hint. */
  describe(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

type Query = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * The dashboard's only way to the service (docs/fleet-api.yaml). Authenticated by the session cookie that
 * `login` makes the service set (HttpOnly: this code never sees it); every write carries the session's
 * CSRF token. A 401 on any call means the session ended: `onSignedOut` runs so the app shows the login.
 */
export class Api {
  private csrf: string | undefined;

  constructor(private readonly onSignedOut: () => void) {}

  /** The current session, or undefined when there is none (not logged in, or expired). */
  async session(): Promise<Session | undefined> {
    try {
      return this.remember(await this.request<Session>('GET', '/session', undefined, undefined, false));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return undefined;
      throw err;
    }
  }

  async login(token: string): Promise<Session> {
    return this.remember(await this.request<Session>('POST', '/login', { token }, undefined, false));
  }

  async logout(): Promise<void> {
    await this.request('POST', '/logout', undefined, undefined, false);
    this.csrf = undefined;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, undefined, query, true);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {}, undefined, true);
  }

  /**
   * A POST answered with Server-Sent Events (the log follow): `onEvent` gets each event's name and
   * parsed data until the service ends the stream or `signal` aborts it. Rejects like any call when the
   * service refuses the request; resolves when the stream ends.
   */
  async stream(path: string, body: unknown, onEvent: (event: string, data: unknown) => void, signal: AbortSignal): Promise<void> {
    const headers: Record<string, string> = { accept: 'text/event-stream', 'content-type': 'application/json' };
    if (this.csrf) headers['x-csrf-token'] = this.csrf;
    let res: Response;
    try {
      res = await fetch(`/api/v1${path}`, { method: 'POST', headers, credentials: 'same-origin', body: JSON.stringify(body), signal });
    } catch (err) {
      if (signal.aborted) return;
      throw new ApiError(0, 'network', `the fleet service cannot be reached: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) {
      const e = ((await res.json().catch(() => undefined)) as { error?: { code?: string; message?: string; hint?: string } } | undefined)?.error;
      if (res.status === 401) this.onSignedOut();
      throw new ApiError(res.status, e?.code ?? 'http', e?.message ?? `POST ${path}: HTTP ${res.status}`, e?.hint);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) onEvent(event, JSON.parse(data));
        }
      }
    } catch (err) {
      if (!signal.aborted) throw new ApiError(0, 'network', `the log stream broke: ${(err as Error).message}`);
    }
  }

  private remember(s: Session): Session {
    this.csrf = s.csrfToken;
    return s;
  }

  private async request<T>(method: string, path: string, body: unknown, query: Query | undefined, signOutOn401: boolean): Promise<T> {
    const url = `/api/v1${path}${queryString(query)}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && this.csrf) headers['x-csrf-token'] = this.csrf;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, credentials: 'same-origin', ...(body !== undefined && { body: JSON.stringify(body) }) });
    } catch (err) {
      throw new ApiError(0, 'network', `the fleet service cannot be reached: ${(err as Error).message}`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; hint?: string } } | undefined)?.error;
      if (res.status === 401 && signOutOn401) this.onSignedOut();
      throw new ApiError(res.status, e?.code ?? 'http', e?.message ?? `${method} ${url}: HTTP ${res.status}`, e?.hint);
    }
    return json as T;
  }
}

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === '') continue;
    for (const one of typeof v === 'string' ? [v] : v) p.append(k, one);
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}
