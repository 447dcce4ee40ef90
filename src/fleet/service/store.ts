/**
 * The fleet service's state: the one narrow interface every part of `berth fleet serve` goes through,
 * implemented once over SQL (sql-store.ts) with two drivers, SQLite (one process, the default) and
 * PostgreSQL (several service instances on one fleet). test/*\/fleet-store.conformance.ts holds the
 * contract's tests and runs them against both.
 *
 * Contract, for every method: it is async, it either completes or throws (a driver error surfaces as
 * BerthError 'network' for PostgreSQL, 'host' for SQLite) and leaves nothing half-written: every method
 * that writes more than one row does so in one transaction. Times are milliseconds since the epoch.
 * Nothing here knows MQTT or HTTP: callers parse messages and requests and hand over plain records.
 */

export type Scope = 'read' | 'deploy' | 'admin';
export const SCOPES: readonly Scope[] = ['read', 'deploy', 'admin'];

export type RolloutState = 'running' | 'paused' | 'completed' | 'aborted' | 'cancelled';
/** Per device in a rollout: `pending` not sent yet, `sent` recorded as sent (published or about to be), the rest final. */
export type DeviceOutcome = 'pending' | 'sent' | 'applied' | 'failed' | 'rolled-back' | 'rejected' | 'superseded' | 'timed-out' | 'not-sent';
export const DEVICE_OUTCOMES: readonly DeviceOutcome[] = ['pending', 'sent', 'applied', 'failed', 'rolled-back', 'rejected', 'superseded', 'timed-out', 'not-sent'];

/** What the service knows about a device, last value of each kind. JSON fields are the device's messages as parsed. */
export interface DeviceRecord {
  readonly id: string;
  readonly online: boolean;
  readonly lastSeen?: number;
  readonly status?: Record<string, unknown>;
  readonly reported?: Record<string, unknown>;
  readonly desiredRevision?: number;
  readonly phase?: string;
  readonly telemetry?: TelemetrySample;
}

/** A change to a device: only the given fields are written; `lastSeen` only ever moves forward. */
export interface DevicePatch {
  readonly online?: boolean;
  readonly lastSeen?: number;
  readonly status?: Record<string, unknown>;
  readonly reported?: Record<string, unknown>;
  readonly desiredRevision?: number;
  /** null clears it. */
  readonly phase?: string | null;
  readonly telemetry?: TelemetrySample;
}

export interface TelemetrySample {
  readonly device: string;
  readonly time: number;
  readonly cpuPercent?: number;
  readonly memoryUsedBytes?: number;
  readonly memoryTotalBytes?: number;
  readonly temperatureC?: number;
}

export type TelemetryPoint = Omit<TelemetrySample, 'device'>;

/** How long telemetry is kept, and in how much room (estimated, see FleetStore.telemetryBytes). */
export interface TelemetryRetention {
  readonly rawMs: number;
  readonly minuteMs: number;
  readonly budgetBytes: number;
}

export interface EventRecord {
  readonly seq: number;
  readonly time: number;
  readonly device?: string;
  readonly rollout?: string;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export type NewEvent = Omit<EventRecord, 'seq'>;

export interface RolloutPolicyRecord {
  readonly ratePerMin?: number;
  readonly abortAfterPct?: number;
  readonly minDevices: number;
  readonly timeoutMs: number;
}

export interface RolloutRecord {
  readonly id: string;
  readonly name: string;
  readonly state: RolloutState;
  readonly abortReason?: string;
  readonly createdAt: number;
  readonly finishedAt?: number;
  readonly createdBy: string;
  readonly policy: RolloutPolicyRecord;
  /** service → the image reference every device gets (`…@sha256:…`). */
  readonly images: Readonly<Record<string, string>>;
  /** The desired state's JSON text without its revision (digests pinned): what every device is sent. */
  readonly body: string;
  readonly counts: Readonly<Record<DeviceOutcome, number>> & { readonly total: number };
  /** When its first device was recorded sent, and how many have been (whatever they became since). */
  readonly startedAt?: number;
  readonly sentCount: number;
  /**
   * Set by a resume: pacing counts again from `at`, when `sent` devices had been sent, so the time spent
   * paused is not a backlog sent in a burst (see transitionRollout).
   */
  readonly pace?: { readonly at: number; readonly sent: number };
}

export interface RolloutDeviceRecord {
  readonly device: string;
  /** Order of sending. */
  readonly seq: number;
  readonly revision: number;
  readonly outcome: DeviceOutcome;
  readonly sentAt?: number;
  readonly sentBy?: string;
  readonly finishedAt?: number;
  readonly phase?: string;
  readonly error?: string;
}

export type NewRollout = Omit<RolloutRecord, 'counts' | 'finishedAt' | 'abortReason' | 'startedAt' | 'sentCount' | 'pace'>;

/**
 * What one step of a rollout sees besides the rollout record (counts, pacing): a bounded summary, never
 * every device row, so a step costs the same at 10 devices and at 10,000 (see FleetStore.stepRollout).
 */
export interface StepView {
  /** The first pending devices in sending order, at most the `maxSend` asked for. */
  readonly next: readonly string[];
  /** Devices still `sent` that were sent at or before now − the policy's timeout: they timed out. */
  readonly expired: readonly string[];
  /** The earliest send time among the devices still `sent`: when the next one can time out. */
  readonly oldestInFlightAt?: number;
}

/** What one step of a rollout decides (see FleetStore.stepRollout). */
export interface StepDecision {
  /** Devices to mark `sent` now (must be `pending`). */
  readonly send?: readonly string[];
  /** Devices given a final outcome now (must be `sent`, or `pending` for `not-sent`). */
  readonly finish?: ReadonlyArray<{ readonly device: string; readonly outcome: DeviceOutcome; readonly error?: string }>;
  /** Every device still `pending` becomes `not-sent` (an aborted or cancelled rollout). */
  readonly dropPending?: boolean;
  /** A new state (aborted with a reason, completed); `finished` stamps finishedAt. */
  readonly state?: { readonly state: RolloutState; readonly reason?: string; readonly finished?: boolean };
}

export interface TokenRecord {
  readonly id: string;
  readonly name: string;
  readonly scope: Scope;
  /** SHA-256 (hex) of the secret: the secret itself is never stored. */
  readonly hash: string;
  readonly createdAt: number;
  /** The last request or login with it, to within TOKEN_TOUCH_MS (absent: never used). */
  readonly lastUsedAt?: number;
}

export interface SessionRecord {
  /** SHA-256 (hex) of the cookie value. */
  readonly hash: string;
  readonly tokenId: string;
  readonly scope: Scope;
  readonly csrf: string;
  readonly expiresAt: number;
}

/**
 * The writes a device's messages make (ingest.ts), callable one by one on the FleetStore or several in
 * one transaction through FleetStore.batch.
 */
export interface DeviceWrites {
  /** A change to a device's record (see DevicePatch). */
  upsertDevice(id: string, patch: DevicePatch): Promise<void>;
  /** Stores raw samples and folds each into its per-minute average. */
  addTelemetry(samples: readonly TelemetrySample[]): Promise<void>;
  /** Appends an event; returns it with its sequence number. */
  addEvent(e: NewEvent): Promise<EventRecord>;
  /** The `sent` rows of a device across rollouts: what a report from it may settle. */
  sentTo(device: string): Promise<Array<{ rollout: string; revision: number }>>;
  /** sentTo of each of `devices` in one read (a device without any is left out): for a batch of messages. */
  sentToEach(devices: readonly string[]): Promise<Map<string, Array<{ rollout: string; revision: number }>>>;
  /** Gives a `sent` device its final outcome; false when it was not `sent` any more (settled elsewhere). */
  settleDevice(rollout: string, device: string, outcome: DeviceOutcome, at: number, error?: string): Promise<boolean>;
  /** The last progress phase of a sent device. */
  setDevicePhase(rollout: string, device: string, phase: string): Promise<void>;
  // The same writes for many devices at once, each kind in as few statements as the database allows
  // (on PostgreSQL every statement is a round trip): for an ingest batch and a rollout step's publishes.
  /** upsertDevice of each; the ids must be distinct (merge a device's patches first). */
  upsertDevices(rows: ReadonlyArray<{ readonly id: string; readonly patch: DevicePatch }>): Promise<void>;
  /** addEvent of each; returns them in the order given, each with its sequence number (increasing in that order). */
  addEvents(events: readonly NewEvent[]): Promise<EventRecord[]>;
  /** settleDevice of each; returns those that were still `sent` (now settled), in no particular order. One (rollout, device) at most once. */
  settleDevices(settles: readonly DeviceSettle[]): Promise<Array<{ rollout: string; device: string }>>;
  /** setDevicePhase of each; one (rollout, device) at most once. */
  setDevicePhases(phases: ReadonlyArray<{ readonly rollout: string; readonly device: string; readonly phase: string }>): Promise<void>;
}

/** A final outcome for a device's `sent` row in a rollout (DeviceWrites.settleDevices). */
export interface DeviceSettle {
  readonly rollout: string;
  readonly device: string;
  readonly outcome: DeviceOutcome;
  readonly at: number;
  readonly error?: string | undefined;
}

export interface FleetStore extends DeviceWrites {
  readonly dialect: 'sqlite' | 'postgres';

  /**
   * Runs `fn`'s writes in one transaction: all of them are committed when it resolves, none when it
   * throws. Reads through `w` (sentTo) see the transaction's own writes; readers elsewhere see none of
   * them before the commit, and notifications (watchRollouts) go out at the commit. `fn` must use only
   * `w` (not this store) until it resolves: on SQLite a call to the store would wait for the transaction.
   * One commit for many device messages is what lets the service keep up with a whole fleet (ingest.ts).
   */
  batch<T>(fn: (w: DeviceWrites) => Promise<T>): Promise<T>;

  getDevice(id: string): Promise<DeviceRecord | undefined>;
  /** Every device, sorted by id. */
  listDevices(): Promise<DeviceRecord[]>;
  /** Every device's id, sorted: no state read (a fleet table's page needs only its own rows). */
  deviceIds(): Promise<string[]>;
  /** The devices of those ids that exist, sorted by id. */
  devicesByIds(ids: readonly string[]): Promise<DeviceRecord[]>;

  /** Raw samples or per-minute averages of one device in [from, to], in time order. */
  telemetry(device: string, from: number, to: number, resolution: 'raw' | 'minute'): Promise<TelemetryPoint[]>;
  /**
   * Drops raw samples older than now − rawMs and minutes older than now − minuteMs, then, while the
   * estimate is over the budget, the oldest raw samples and then the oldest minutes. Returns rows deleted.
   */
  pruneTelemetry(retention: TelemetryRetention, now: number): Promise<number>;
  /** An estimate of the room telemetry takes: rows × a fixed per-row size of each table. */
  telemetryBytes(): Promise<number>;

  /** Newest first; `before` pages by seq. */
  events(q: { device?: string; before?: number; limit: number }): Promise<EventRecord[]>;

  /**
   * Stores a rollout and its devices (all `pending`, in the given order) in one transaction. Those
   * devices' `pending` rows in other rollouts become `superseded` (never sent: the newer rollout wins,
   * as a newer desired state wins on the device). Creations are serialized across instances (SQLite's
   * write lock, a PostgreSQL advisory lock), and inside that each device's revision is raised above
   * every revision any rollout already holds for it: two rollouts created at once for one device, from
   * one or two instances, get distinct revisions, and the one committed last is the newer (it
   * supersedes the other: its pending row at once, its sent row when the device reports the newer one).
   */
  createRollout(r: NewRollout, devices: ReadonlyArray<{ device: string; revision: number }>): Promise<RolloutRecord>;
  getRollout(id: string): Promise<RolloutRecord | undefined>;
  /** Newest first. */
  listRollouts(limit: number): Promise<RolloutRecord[]>;
  /**
   * In sending order; only those with `outcome` when given; with `page`, at most `limit` of them whose
   * seq is above `after` (a rollout of 10,000 devices is read a page at a time).
   */
  rolloutDevices(id: string, outcome?: DeviceOutcome, page?: { readonly after: number; readonly limit: number }): Promise<RolloutDeviceRecord[]>;
  /** The rows of those devices in the rollout (those it has), in sending order: what changed, not the whole rollout. */
  rolloutDevicesOf(id: string, devices: readonly string[]): Promise<RolloutDeviceRecord[]>;
  /** Ids of rollouts without finishedAt (running, paused, or aborted/cancelled with devices still sent). */
  unfinishedRollouts(): Promise<string[]>;
  /**
   * Moves a rollout from one of `from` to `to` (compare-and-set); undefined when it is not in `from`
   * (or does not exist). Cancelling also turns its pending devices into `not-sent`; resuming (paused →
   * running) restarts its pace at `now` (RolloutRecord.pace).
   */
  transitionRollout(id: string, from: readonly RolloutState[], to: RolloutState, now: number): Promise<RolloutRecord | undefined>;
  /**
   * One step of a rollout, atomic across every service instance on the database: the rollout row is
   * locked (PostgreSQL SELECT … FOR UPDATE; SQLite BEGIN IMMEDIATE), `decide` sees it and a StepView of
   * its devices (at most `maxSend` of the pending ones) as committed and returns what to change, and the
   * change is applied before the lock is released. Devices in `send` are recorded `sent` by `instance`
   * at `now` only if still `pending` (and counted in sentCount; the first stamps startedAt): so two
   * instances can never both send one device. Returns the devices recorded sent (with their revision)
   * for the caller to publish, after this commit. `decide` must be synchronous and pure.
   */
  stepRollout(id: string, instance: string, now: number, maxSend: number, decide: (r: RolloutRecord, view: StepView) => StepDecision): Promise<Array<{ device: string; revision: number }>>;
  /** The highest revision of each device's `pending` or `sent` rows: a new rollout must plan above it. */
  openRevisions(): Promise<Map<string, number>>;

  /**
   * Calls `fn` with a rollout's id when another process on this database changed it (created, stepped,
   * paused or resumed, a device settled): PostgreSQL LISTEN/NOTIFY, sent in the writing transaction so
   * it arrives after the commit. SQLite has a single process: `fn` is never called. A notification can
   * be lost while the listening connection reconnects, so callers keep a slow poll as a safety net.
   * Resolves, once listening, to the unsubscribe function.
   */
  watchRollouts(fn: (rollout: string) => void): Promise<() => Promise<void>>;

  addToken(t: TokenRecord): Promise<void>;
  tokenByHash(hash: string): Promise<TokenRecord | undefined>;
  /** Every token, oldest first (hashes included: callers presenting them leave the hash out). */
  listTokens(): Promise<TokenRecord[]>;
  /** Records a use of the token at `at`. */
  touchToken(id: string, at: number): Promise<void>;
  /** Deletes the token and every session logged in with it, in one transaction; false when there was none. */
  deleteToken(id: string): Promise<boolean>;
  addSession(s: SessionRecord): Promise<void>;
  /** A session that has not expired at `now`. */
  sessionByHash(hash: string, now: number): Promise<SessionRecord | undefined>;
  deleteSession(hash: string): Promise<void>;

  close(): Promise<void>;
}
