import type { DesiredState, ErrorInfo } from '../protocol/types.js';
import type { StateStore } from './store.js';

export type DeploymentStatus = 'applying' | 'applied' | 'failed' | 'rolled-back' | 'rejected' | 'superseded';

export interface DeploymentRecord {
  readonly revision: number;
  readonly desired: DesiredState;
  readonly status: DeploymentStatus;
  readonly error?: ErrorInfo;
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

const fromRow = (r: Row): DeploymentRecord => ({
  revision: r.revision,
  desired: JSON.parse(r.desired) as DesiredState,
  status: r.status,
  ...(r.error !== null && { error: JSON.parse(r.error) as ErrorInfo }),
  receivedAt: r.received_at,
  ...(r.finished_at !== null && { finishedAt: r.finished_at }),
});

const LAST_GOOD = 'last_good_revision';

/** Desired states the agent received, with their outcome, and which one last ran well. */
export class DeploymentRecords {
  constructor(private readonly store: StateStore) {}

  /** Records a newly received revision as applying; an already known revision is left as it was. */
  receive(desired: DesiredState, at: number): DeploymentRecord {
    this.store.db
      .prepare("INSERT INTO deployments (revision, desired, status, received_at) VALUES (?, ?, 'applying', ?) ON CONFLICT (revision) DO NOTHING")
      .run(desired.revision, JSON.stringify(desired), at);
    return this.get(desired.revision)!;
  }

  /** A revision that failed validation: kept so it is reported, never applied. */
  reject(revision: number, error: ErrorInfo, at: number): void {
    this.store.db
      .prepare("INSERT INTO deployments (revision, desired, status, error, received_at, finished_at) VALUES (?, '{}', 'rejected', ?, ?, ?) ON CONFLICT (revision) DO NOTHING")
      .run(revision, JSON.stringify(error), at, at);
  }

  finish(revision: number, status: Exclude<DeploymentStatus, 'applying'>, at: number, error?: ErrorInfo): void {
    this.store.transaction(() => {
      this.store.db.prepare('UPDATE deployments SET status = ?, error = ?, finished_at = ? WHERE revision = ?').run(status, error ? JSON.stringify(error) : null, at, revision);
      if (status === 'applied') this.store.setMeta(LAST_GOOD, String(revision));
    });
  }

  get(revision: number): DeploymentRecord | undefined {
    const row = this.store.db.prepare('SELECT * FROM deployments WHERE revision = ?').get(revision) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** The highest revision received (applied or not). */
  latest(): DeploymentRecord | undefined {
    const row = this.store.db.prepare('SELECT * FROM deployments ORDER BY revision DESC LIMIT 1').get() as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /**
   * The highest revision that was valid (received to be applied), whatever its outcome: what a new
   * desired state must be newer than. Rejected revisions do not count, so an invalid message cannot
   * block later deploys.
   */
  newestAccepted(): DeploymentRecord | undefined {
    const row = this.store.db.prepare("SELECT * FROM deployments WHERE status != 'rejected' ORDER BY revision DESC LIMIT 1").get() as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  lastGood(): DeploymentRecord | undefined {
    const rev = this.store.getMeta(LAST_GOOD);
    return rev === undefined ? undefined : this.get(Number(rev));
  }
}
