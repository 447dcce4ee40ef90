import type { StateStore } from './store.js';

/** The rotated fleet key as stored: which configured key it replaced (by id), and the new key (base64). */
export interface RotatedKey {
  /** Id of the key agent.yaml named when the first rotation happened: a re-provisioned board starts over. */
  readonly base: string;
  readonly key: string;
  readonly rotatedAt: number;
}

const ROTATED_KEY = 'fleet_key_rotated';
const SEEN_COMMANDS = 'commands_seen';

/**
 * What the agent remembers to judge fleet messages (src/agent/trust.ts holds the policy): the fleet key
 * a signed rotate-key installed, and the signed command ids it has run with their issue times. Both live
 * in the store's meta table, so they survive a reboot or a kill -9 like the deployments do.
 */
export class TrustRecords {
  constructor(private readonly store: StateStore) {}

  rotatedKey(): RotatedKey | undefined {
    const v = this.store.getMeta(ROTATED_KEY);
    return v === undefined ? undefined : (JSON.parse(v) as RotatedKey);
  }

  setRotatedKey(k: RotatedKey): void {
    this.store.setMeta(ROTATED_KEY, JSON.stringify(k));
  }

  /** Command id → issue time (ms since the epoch). */
  seenCommands(): Map<string, number> {
    const v = this.store.getMeta(SEEN_COMMANDS);
    return new Map(v === undefined ? [] : (JSON.parse(v) as Array<[string, number]>));
  }

  setSeenCommands(seen: ReadonlyMap<string, number>): void {
    this.store.setMeta(SEEN_COMMANDS, JSON.stringify([...seen]));
  }
}
