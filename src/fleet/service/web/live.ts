import type { DeviceSummary, FleetEvent, RolloutDevice, RolloutSummary } from './types.js';

/** The messages of `GET /api/v1/stream` (docs/fleet-api.yaml), by SSE event name. */
export interface LiveMessages {
  device: DeviceSummary;
  rollout: RolloutSummary;
  'rollout-device': { readonly rollout: string; readonly device: RolloutDevice };
  event: FleetEvent;
  /** Not from the service: the stream (re)connected. It has no replay, so pages re-read their lists. */
  open: undefined;
}

type Handler<K extends keyof LiveMessages> = (msg: LiveMessages[K]) => void;

/**
 * One EventSource for the whole app (a browser allows few connections per host over HTTP/1.1, so pages
 * share it instead of opening their own). Pages subscribe by event name and unsubscribe when they go.
 * The browser reconnects by itself; each (re)connect is announced as `open`.
 */
export class LiveStream {
  private source: EventSource | undefined;
  private readonly handlers = new Map<keyof LiveMessages, Set<(msg: never) => void>>();
  private connected = false;
  private readonly stateListeners = new Set<(connected: boolean) => void>();

  constructor(private readonly url = '/api/v1/stream') {}

  start(): void {
    if (this.source) return;
    const es = new EventSource(this.url, { withCredentials: true });
    this.source = es;
    es.addEventListener('open', () => {
      this.setConnected(true);
      this.emit('open', undefined);
    });
    es.addEventListener('error', () => this.setConnected(false));
    for (const name of ['device', 'rollout', 'rollout-device', 'event'] as const) {
      es.addEventListener(name, (e) => {
        let msg: unknown;
        try {
          msg = JSON.parse((e as MessageEvent<string>).data);
        } catch {
          return; // a message we cannot read is one we cannot show; the next list read catches up
        }
        this.emit(name, msg as LiveMessages[typeof name]);
      });
    }
  }

  stop(): void {
    this.source?.close();
    this.source = undefined;
    this.setConnected(false);
  }

  on<K extends keyof LiveMessages>(name: K, handler: Handler<K>): () => void {
    let set = this.handlers.get(name);
    if (!set) this.handlers.set(name, (set = new Set()));
    set.add(handler as (msg: never) => void);
    return () => set.delete(handler as (msg: never) => void);
  }

  /** Follows whether the stream is connected (the header's "live" mark). */
  onState(listener: (connected: boolean) => void): () => void {
    this.stateListeners.add(listener);
    listener(this.connected);
    return () => this.stateListeners.delete(listener);
  }

  private emit<K extends keyof LiveMessages>(name: K, msg: LiveMessages[K]): void {
    for (const h of this.handlers.get(name) ?? []) (h as Handler<K>)(msg);
  }

  private setConnected(c: boolean): void {
    if (c === this.connected) return;
    this.connected = c;
    for (const l of this.stateListeners) l(c);
  }
}
