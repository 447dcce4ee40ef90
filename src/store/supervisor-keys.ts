import crypto from 'node:crypto';
import type { StateStore } from './store.js';

/** An app's identity towards the supervisor API: balena's numeric app id and the app's API key. */
export interface AppIdentity {
  /** App.name. */
  readonly app: string;
  /** balena's `appId` (a positive integer, stable for the app name on this device). */
  readonly appId: number;
  /** 32 random bytes, hex: what BALENA_SUPERVISOR_API_KEY carries. */
  readonly apiKey: string;
}

interface Stored {
  /** balena's device UUID (32 hex characters), made once per state root. */
  readonly deviceUuid: string;
  readonly apps: readonly AppIdentity[];
}

const META = 'supervisor_api';

/**
 * The supervisor API's secrets and ids, in the store's meta table: created inside one IMMEDIATE
 * transaction (a `berth deploy` and the agent creating the same app's key at once get one key, and a
 * kill -9 leaves either the old record or the new one). Keys never leave through this class but to the
 * container that gets them and to the server that checks them; nothing here logs.
 */
export class SupervisorKeyRecords {
  constructor(private readonly store: StateStore) {}

  private read(): Stored | undefined {
    const v = this.store.getMeta(META);
    return v === undefined ? undefined : (JSON.parse(v) as Stored);
  }

  /** Reads the record, creating it (or the app's entry) when missing, atomically. */
  private ensure(app?: string): Stored {
    const current = this.read();
    if (current && (app === undefined || current.apps.some((a) => a.app === app))) return current;
    return this.store.transaction(() => {
      const s = this.read() ?? { deviceUuid: crypto.randomBytes(16).toString('hex'), apps: [] };
      if (app === undefined || s.apps.some((a) => a.app === app)) {
        if (!current) this.store.setMeta(META, JSON.stringify(s));
        return s;
      }
      const appId = Math.max(0, ...s.apps.map((a) => a.appId)) + 1;
      const next: Stored = { ...s, apps: [...s.apps, { app, appId, apiKey: crypto.randomBytes(32).toString('hex') }] };
      this.store.setMeta(META, JSON.stringify(next));
      return next;
    });
  }

  /** The app's identity, created on first use. */
  identity(app: string): AppIdentity {
    return this.ensure(app).apps.find((a) => a.app === app)!;
  }

  /** The identity a key belongs to; undefined for an unknown key. Compared in constant time. */
  byKey(apiKey: string): AppIdentity | undefined {
    const given = Buffer.from(apiKey);
    return this.read()?.apps.find((a) => {
      const mine = Buffer.from(a.apiKey);
      return mine.length === given.length && crypto.timingSafeEqual(mine, given);
    });
  }

  /** The identity of app id `appId`; undefined when no app has it. */
  byAppId(appId: number): AppIdentity | undefined {
    return this.read()?.apps.find((a) => a.appId === appId);
  }

  deviceUuid(): string {
    return this.ensure().deviceUuid;
  }
}
