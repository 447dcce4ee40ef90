import { createContext } from 'preact';
import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import type { Api } from './api.js';
import { ApiError } from './api.js';
import type { LiveMessages, LiveStream } from './live.js';
import type { Session } from './types.js';

/** What every page needs, made once by main.ts and handed down (no module-level singletons). */
export interface AppServices {
  readonly api: Api;
  readonly live: LiveStream;
  readonly session: Session;
}

export const Services = createContext<AppServices | undefined>(undefined);

export function useServices(): AppServices {
  const s = useContext(Services);
  if (!s) throw new Error('useServices outside <Services.Provider>');
  return s;
}

/** Calls `handler` for each live message `name` while the component is mounted; the latest handler wins. */
export function useLive<K extends keyof LiveMessages>(name: K, handler: (msg: LiveMessages[K]) => void): void {
  const { live } = useServices();
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => live.on(name, (m) => ref.current(m)), [live, name]);
}

export interface Loaded<T> {
  readonly data: T | undefined;
  readonly error: string | undefined;
  /** Loads again (after a live message says the data moved, or the stream reconnected). */
  readonly reload: () => void;
  readonly set: (update: (old: T | undefined) => T | undefined) => void;
}

/**
 * Loads `load()` when `key` changes and again whenever the live stream reconnects (it has no replay, so
 * what happened while it was down is only in the lists). Later answers never overwrite newer ones.
 */
export function useLoad<T>(key: string, load: () => Promise<T>): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const seq = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = (): void => {
    const mine = ++seq.current;
    loadRef.current().then(
      (d) => {
        if (mine !== seq.current) return;
        setData(d);
        setError(undefined);
      },
      (err: unknown) => {
        if (mine !== seq.current) return;
        setError(err instanceof ApiError ? err.describe() : String(err));
      },
    );
  };
  useEffect(() => {
    setData(undefined);
    reload();
  }, [key]);
  useLive('open', reload);
  return { data, error, reload, set: (u) => setData(u) };
}

/** Re-renders every `ms` so "12 s ago" stays true; the data itself arrives by events, not by this. */
export function useNow(ms = 5000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** Runs `fn` at most once per `ms`, the last call winning: many live messages, one reload. */
export function useCoalesced(fn: () => void, ms = 1000): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => () => clearTimeout(timer.current), []);
  return () => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      fnRef.current();
    }, ms);
  };
}
