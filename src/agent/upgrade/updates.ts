/**
 * The running agent's side of self-update (docs/upgrade.md §3): what `reported.agent` says, and a
 * desired state's `agent` bundle turned into one upgrade once the deploy it came with has settled.
 */
import type { AgentBundleRef, AgentReport } from '../../protocol/types.js';
import type { UpgradeResult } from './records.js';
import type { UpgradeContext } from './trial.js';
import type { Upgrader } from './upgrader.js';

export interface AgentUpdatesDeps {
  readonly context: UpgradeContext | undefined;
  /** The package version this agent runs. */
  readonly version: string;
  /** Absent outside an install with the launcher: a bundle request is then reported failed. */
  readonly upgrader: Upgrader | undefined;
  /** Resolves when no deploy runs or waits: the app part of a desired state goes first. */
  readonly settled: () => Promise<void>;
  readonly signal: AbortSignal;
  readonly log: (event: string, detail: Record<string, unknown>) => void;
  /** `reported` is stale: the upgrade state changed. */
  readonly changed: () => void;
}

export class AgentUpdates {
  private failure: { digest: string; cause: string; time: string } | undefined;
  /** The digest of a request declined because that bundle was rolled back here (Upgrader: `declined`). */
  private declined: string | undefined;

  constructor(private readonly d: AgentUpdatesDeps) {}

  report(): AgentReport {
    const layout = this.d.context?.layout;
    const result = layout?.result();
    const installed = this.d.context?.running;
    const previous = layout?.linked('previous');
    const upgrade = this.failure
      ? { state: 'failed' as const, digest: this.failure.digest, cause: this.failure.cause, time: this.failure.time }
      : result && { state: result.state, to: result.to, ...(result.digest && { digest: result.digest }), ...(cause(result, this.declined) && { cause: cause(result, this.declined) }), time: result.time };
    return {
      version: this.d.version,
      ...(installed !== undefined && { installed }),
      ...(previous !== undefined && previous !== installed && { previous }),
      ...(upgrade && { upgrade }),
    };
  }

  /** Asked by a newly accepted desired state carrying `agent`: upgrades after the deploy settles. */
  request(bundle: AgentBundleRef): void {
    void this.run(bundle);
  }

  private async run(bundle: AgentBundleRef): Promise<void> {
    const { upgrader, log } = this.d;
    this.failure = undefined;
    // Decided before the deploy part settles: every report of this revision already says why.
    this.declined = upgrader?.declines(bundle) ? bundle.digest : undefined;
    try {
      await this.d.settled();
      if (this.d.signal.aborted) return;
      if (!upgrader) throw new Error('this agent was not started by the launcher (no BERTH_PREFIX): it cannot upgrade itself');
      const out = await upgrader.upgrade(bundle, this.d.signal);
      if (out.kind === 'current') log('upgrade-not-needed', { version: out.version, digest: bundle.digest });
      if (out.kind === 'declined') {
        log('upgrade-not-retried', { digest: bundle.digest, rolledBackAt: out.rolledBack.time, cause: out.rolledBack.cause });
      }
    } catch (err) {
      // The Upgrader wrote its result file when it had a layout; without one, the report says it.
      if (!upgrader) this.failure = { digest: bundle.digest, cause: (err as Error).message, time: new Date().toISOString() };
      log('upgrade-error', { digest: bundle.digest, error: (err as Error).message });
    }
    this.d.changed();
  }
}

/**
 * The report's cause: the result's own, and for a request declined because this bundle was rolled back
 * here, why it was not tried again (so a re-sent digest is not "rolled back" at once without a word).
 */
function cause(result: UpgradeResult, declined: string | undefined): string | undefined {
  if (declined === undefined || result.state !== 'rolled-back' || result.digest !== declined) return result.cause;
  return `${result.cause ?? 'rolled back'}; not retried: this bundle was rolled back on this device at ${result.time} (push a new bundle to try again)`;
}
