import { BerthError } from '../errors.js';
import { COMMAND_LIFETIME_MS, FleetPublicKey, type Envelope } from '../protocol/signing.js';
import type { RotatedKey } from '../store/trust.js';

/** Where the trust state persists (src/store/trust.ts TrustRecords; a Map-backed one in unit tests). */
export interface TrustStore {
  rotatedKey(): RotatedKey | undefined;
  setRotatedKey(k: RotatedKey): void;
  seenCommands(): Map<string, number>;
  setSeenCommands(seen: ReadonlyMap<string, number>): void;
}

/** Command ids remembered at most: far more than a device runs in a broker session's lifetime. */
export const MAX_SEEN_COMMANDS = 10_000;

const refuse = (message: string, hint?: string): BerthError => new BerthError('auth', message, hint === undefined ? undefined : { hint });

/**
 * Whom the device believes: the fleet key it trusts now and the signed commands it has already run.
 *
 * The trusted key is agent.yaml's `fleetKey` until a signed `rotate-key` replaces it; the replacement is
 * stored with the id of the configured key it descends from, so re-flashing the board with another key
 * (a new agent.yaml) starts over from that key instead of an old rotation. Commands are admitted once:
 * an id seen before, or one issued longer ago than a broker keeps a command for an offline device, is a
 * replay. Every refusal is an `auth` BerthError naming the reason.
 */
export class FleetTrust {
  private current: FleetPublicKey | undefined;
  private readonly seen: Map<string, number>;

  constructor(private readonly configured: FleetPublicKey | undefined, private readonly store: TrustStore) {
    const rotated = store.rotatedKey();
    this.current = configured !== undefined && rotated?.base === configured.id ? FleetPublicKey.fromBase64(rotated.key, 'the rotated fleet key in the state store') : configured;
    this.seen = store.seenCommands();
  }

  /** The key signatures must verify under; undefined when the device has none. */
  get key(): FleetPublicKey | undefined {
    return this.current;
  }

  /** Throws unless `env` is for `device` and verifies under the trusted key. */
  verify(env: Envelope, device: string): void {
    if (env.device !== device) throw refuse(`signed for device ${env.device}, not for this one (${device})`);
    const key = this.current;
    if (key === undefined) throw refuse('this device has no fleet key to check signatures with', 'set fleetKey in agent.yaml (berth flash --signing-key does)');
    if (env.key !== key.id) throw refuse(`signed with key ${env.key}; this device trusts key ${key.id}`, 'a retired key, or a rotate-key this device has not received yet');
    if (!key.verify(env)) throw refuse(`the signature does not verify under key ${key.id}: the message was altered or signed for something else`);
  }

  /**
   * Admits a verified command once. Throws for an id already run (a replay) or an issue time older than
   * {@link COMMAND_LIFETIME_MS} by this device's clock; a time in the future is accepted (a board without
   * a real-time clock may run behind) and remembered like any other.
   */
  admitCommand(id: string, issued: string, now: number): void {
    const at = Date.parse(issued);
    if (this.seen.has(id)) throw refuse(`command ${id} was already run: a replay`);
    if (now - at > COMMAND_LIFETIME_MS) throw refuse(`command ${id} was issued at ${issued}, longer ago than a broker keeps commands: a replay or a stale command`);
    for (const [old, t] of this.seen) if (now - t > COMMAND_LIFETIME_MS) this.seen.delete(old);
    this.seen.set(id, at);
    // Map order is insertion order: past the cap the oldest entries go first.
    for (const old of this.seen.keys()) {
      if (this.seen.size <= MAX_SEEN_COMMANDS) break;
      this.seen.delete(old);
    }
    this.store.setSeenCommands(this.seen);
  }

  /** Trusts `next` instead of the current key from now on (the caller verified the rotate-key under it). */
  rotate(next: FleetPublicKey, now: number): void {
    if (this.configured === undefined) throw refuse('this device has no configured fleet key to rotate from');
    this.store.setRotatedKey({ base: this.configured.id, key: next.base64, rotatedAt: now });
    this.current = next;
  }
}
