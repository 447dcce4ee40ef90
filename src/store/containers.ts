import type { StateStore } from './store.js';

export type ContainerState = 'created' | 'running' | 'exited' | 'dead';

/**
 * One row of the containers table. `Options` is the owner's run options (the runtime's RunOptions):
 * the store keeps them as JSON it never looks into, so it needs no type from the stages above it.
 */
export interface ContainerRecord<Options> {
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly imageDigest: string;
  readonly options: Options;
  readonly runtime: string;
  readonly createdAt: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
  readonly state: ContainerState;
  readonly exitCode?: number;
  readonly oomKilled: boolean;
  readonly restartCount: number;
  readonly stoppedByUser: boolean;
}

interface Row {
  id: string;
  name: string;
  image: string;
  image_digest: string;
  options: string;
  runtime: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  state: ContainerState;
  exit_code: number | null;
  oom_killed: number;
  restart_count: number;
  stopped_by_user: number;
}

const fromRow = <Options>(r: Row): ContainerRecord<Options> => ({
  id: r.id,
  name: r.name,
  image: r.image,
  imageDigest: r.image_digest,
  options: JSON.parse(r.options) as Options,
  runtime: r.runtime,
  createdAt: r.created_at,
  ...(r.started_at !== null && { startedAt: r.started_at }),
  ...(r.finished_at !== null && { finishedAt: r.finished_at }),
  state: r.state,
  ...(r.exit_code !== null && { exitCode: r.exit_code }),
  oomKilled: r.oom_killed !== 0,
  restartCount: r.restart_count,
  stoppedByUser: r.stopped_by_user !== 0,
});

/**
 * Typed access to the containers table; the schema lives in migrations.ts. The options read back are
 * those written by `insert` (the JSON round trip of `Options`), so one owner, the engine, should both
 * write and read them: the composition root builds the one instance, as ContainerRecords<RunOptions>.
 */
export class ContainerRecords<Options> {
  constructor(private readonly store: StateStore) {}

  insert(c: Omit<ContainerRecord<Options>, 'state' | 'oomKilled' | 'restartCount' | 'stoppedByUser'>): void {
    this.store.db
      .prepare('INSERT INTO containers (id, name, image, image_digest, options, runtime, created_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(c.id, c.name, c.image, c.imageDigest, JSON.stringify(c.options), c.runtime, c.createdAt, 'created');
  }

  get(id: string): ContainerRecord<Options> | undefined {
    const row = this.store.db.prepare('SELECT * FROM containers WHERE id = ?').get(id) as Row | undefined;
    return row && fromRow<Options>(row);
  }

  byName(name: string): ContainerRecord<Options> | undefined {
    const row = this.store.db.prepare('SELECT * FROM containers WHERE name = ?').get(name) as Row | undefined;
    return row && fromRow<Options>(row);
  }

  byIdPrefix(prefix: string): Array<ContainerRecord<Options>> {
    return (this.store.db.prepare("SELECT * FROM containers WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at").all(`${prefix.replace(/[%_\\]/g, '\\$&')}%`) as Row[]).map((r) => fromRow<Options>(r));
  }

  list(): Array<ContainerRecord<Options>> {
    return (this.store.db.prepare('SELECT * FROM containers ORDER BY created_at').all() as Row[]).map((r) => fromRow<Options>(r));
  }

  markStarted(id: string, at: number): void {
    this.store.db.prepare("UPDATE containers SET state = 'running', started_at = ?, finished_at = NULL, exit_code = NULL, oom_killed = 0, stopped_by_user = 0 WHERE id = ?").run(at, id);
  }

  markExited(id: string, e: { exitCode: number; oomKilled: boolean; finishedAt: number; state: 'exited' | 'dead' }): void {
    this.store.db.prepare('UPDATE containers SET state = ?, exit_code = ?, oom_killed = ?, finished_at = ? WHERE id = ?').run(e.state, e.exitCode, e.oomKilled ? 1 : 0, e.finishedAt, id);
  }

  /** docker rename; the UNIQUE name constraint makes a race with another process a SqliteError, checked by the caller first. */
  rename(id: string, name: string): void {
    this.store.db.prepare('UPDATE containers SET name = ? WHERE id = ?').run(name, id);
  }

  /** docker update: the options the owner checked. */
  updateOptions(id: string, options: Options): void {
    this.store.db.prepare('UPDATE containers SET options = ? WHERE id = ?').run(JSON.stringify(options), id);
  }

  markStoppedByUser(id: string): void {
    this.store.db.prepare('UPDATE containers SET stopped_by_user = 1 WHERE id = ?').run(id);
  }

  incrementRestarts(id: string): void {
    this.store.db.prepare('UPDATE containers SET restart_count = restart_count + 1 WHERE id = ?').run(id);
  }

  remove(id: string): void {
    this.store.db.prepare('DELETE FROM containers WHERE id = ?').run(id);
  }

  /** Images some container uses: image removal must keep them. */
  imagesInUse(): Set<string> {
    return new Set((this.store.db.prepare('SELECT DISTINCT image FROM containers').all() as Array<{ image: string }>).map((r) => r.image));
  }
}
