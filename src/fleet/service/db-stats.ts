/**
 * Round trips to the database, counted for issue 21's measurements (`BERTH_DB_STATS=1 berth fleet serve`,
 * printed on SIGUSR2, which scripts/bench/fleet-10k.mjs sends around the rollout): on PostgreSQL every
 * statement is a round trip, and a rollout that waits on them is slower than the CLI fan-out.
 *
 * Transactions are grouped by their first statement after BEGIN (its first words name what the
 * transaction is: a rollout step starts by locking the rollout row, an ingest batch by reading the
 * devices' sent rows), so a report says how many round trips each kind of transaction makes.
 */
export class DbStats {
  private queries = 0;
  private readonly kinds = new Map<string, { tx: number; queries: number }>();

  /** A statement run on its own (its own round trip and commit). */
  single(sql: string): void {
    this.add(`single: ${words(sql)}`, 0, 1);
  }

  /** A transaction ended (committed or rolled back) after `statements` round trips, BEGIN and COMMIT included; `first` is its first statement after BEGIN. */
  transaction(first: string, statements: number): void {
    this.add(`tx: ${words(first)}`, 1, statements);
  }

  private add(key: string, tx: number, queries: number): void {
    this.queries += queries;
    const k = this.kinds.get(key) ?? { tx: 0, queries: 0 };
    this.kinds.set(key, { tx: k.tx + tx, queries: k.queries + queries });
  }

  /** One line of JSON: total statements, and per kind the transactions and statements (BEGIN/COMMIT included). */
  report(): string {
    const kinds = Object.fromEntries([...this.kinds].sort((a, b) => b[1].queries - a[1].queries));
    return `db-stats ${JSON.stringify({ queries: this.queries, kinds })}`;
  }
}

const words = (sql: string): string => sql.replace(/\s+/g, ' ').trim().slice(0, 60);

/**
 * Prints `stats` through `log` now and on every SIGUSR2 until the returned function is called. The
 * first line tells a caller that the signal is handled (without a handler SIGUSR2 ends a node process).
 */
export function reportOnSignal(stats: DbStats, log: (line: string) => void): () => void {
  const print = (): void => log(stats.report());
  process.on('SIGUSR2', print);
  print();
  return () => void process.off('SIGUSR2', print);
}
