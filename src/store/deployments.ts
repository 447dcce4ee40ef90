import type { StateStore } from './store.js';

export type DeploymentStatus = 'applying' | 'applied' | 'failed' | 'rolled-back' | 'rejected' | 'superseded';

/** What the table needs of a desired state: its revision is the key. */
export interface Revisioned {
  readonly revision: number;
}

/**
 * One row of the deployments table. `Desired` and `Failure` are the agent's desired state and error
 * info (src/protocol/types.ts): the store keeps them as JSON it never looks into beyond the revision.
 */
export interface DeploymentRecord<Desired extends Revisioned, Failure> {
  readonly revision: number;
  /** For a rejected revision, `{}`: what was received never passed validation, so it is not kept. */
  readonly desired: Desired;
  readonly status: DeploymentStatus;
  readonly error?: Failure;
  readonly receivedAt: number;
  readonly finishedAt?: number;
}

interface Row {
  revision: number;
  desired: string;
  status: DeploymentStatus;
  error: string | null;
  received_at: number;
  finished_at: number | null;
}

const fromRow = <D extends Revisioned, F>(r: Row): DeploymentRecord<D, F> => ({
  revision: r.revision,
  desired: JSON.parse(r.desired) as D,
  status: r.status,
  ...(r.error !== null && { error: JSON.parse(r.error) as F }),
  receivedAt: r.received_at,
  ...(r.finished_at !== null && { finishedAt: r.finished_at }),
});

const LAST_GOOD = 'last_good_revision';

/**
 * Desired states the agent received, with their outcome, and which one last ran well. The payloads
 * read back are the JSON round trip of what was written: the composition root builds the one instance
 * the agent and `berth deploy` share, typed with the protocol's DesiredState and ErrorInfo.
 */
export class DeploymentRecords<Desired extends Revisioned, Failure> {
  constructor(private readonly store: StateStore) {}

  /** Records a newly received revision as applying; an already known revision is left as it was. */
  receive(desired: Desired, at: number): DeploymentRecord<Desired, Failure> {
    this.store.db
      .prepare("INSERT INTO deployments (revision, desired, status, received_at) VALUES (?, ?, 'applying', ?) ON CONFLICT (revision) DO NOTHING")
      .run(desired.revision, JSON.stringify(desired), at);
    return this.get(desired.revision)!;
  }

  /** A revision that failed validation: kept so it is reported, never applied. */
  reject(revision: number, error: Failure, at: number): void {
    this.store.db
      .prepare("INSERT INTO deployments (revision, desired, status, error, received_at, finished_at) VALUES (?, '{}', 'rejected', ?, ?, ?) ON CONFLICT (revision) DO NOTHING")
      .run(revision, JSON.stringify(error), at, at);
  }

  finish(revision: number, status: Exclude<DeploymentStatus, 'applying'>, at: number, error?: Failure): void {
    this.store.transaction(() => {
      this.store.db.prepare('UPDATE deployments SET status = ?, error = ?, finished_at = ? WHERE revision = ?').run(status, error ? JSON.stringify(error) : null, at, revision);
      if (status === 'applied') this.store.setMeta(LAST_GOOD, String(revision));
    });
  }

  get(revision: number): DeploymentRecord<Desired, Failure> | undefined {
    const row = this.store.db.prepare('SELECT * FROM deployments WHERE revision = ?').get(revision) as Row | undefined;
    return row ? fromRow<Desired, Failure>(row) : undefined;
  }

  /** The highest revision received (applied or not). */
  latest(): DeploymentRecord<Desired, Failure> | undefined {
    const row = this.store.db.prepare('SELECT * FROM deployments ORDER BY revision DESC LIMIT 1').get() as Row | undefined;
    return row ? fromRow<Desired, Failure>(row) : undefined;
  }

  /**
   * The highest revision that was valid (received to be applied), whatever its outcome: what a new
   * desired state must be newer than. Rejected revisions do not count, so an invalid message cannot
   * block later deploys.
   */
  newestAccepted(): DeploymentRecord<Desired, Failure> | undefined {
    const row = this.store.db.prepare("SELECT * FROM deployments WHERE status != 'rejected' ORDER BY revision DESC LIMIT 1").get() as Row | undefined;
    return row ? fromRow<Desired, Failure>(row) : undefined;
  }

  lastGood(): DeploymentRecord<Desired, Failure> | undefined {
    const rev = this.store.getMeta(LAST_GOOD);
    return rev === undefined ? undefined : this.get(Number(rev));
  }
}
