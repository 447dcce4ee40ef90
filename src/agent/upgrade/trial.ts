/**
 * The agent's half of a trial (docs/upgrade.md §2): an agent the launcher started on trial confirms
 * once it has started, reconciled and (with a broker) reached it. Until then it writes how far it got,
 * so the launcher's rollback can say where the new version stopped.
 */
import { InstallLayout } from './layout.js';
import { removeFlatLeftovers } from './migrate.js';
import type { UpgradeResult } from './records.js';

export type TrialStage = 'started' | 'reconciled' | 'broker';

/** What the agent learns at start about upgrades: its install, and whether it runs on trial. */
export interface UpgradeContext {
  readonly layout: InstallLayout;
  /** The version directory this agent runs from (`current` at start); undefined outside an install. */
  readonly running: string | undefined;
  /** The launcher's pid when this agent is on trial (BERTH_TRIAL=1 and a trial record naming it). */
  readonly trialLauncher: number | undefined;
}

/** From the launcher's environment: BERTH_PREFIX (every start), BERTH_TRIAL and BERTH_LAUNCHER_PID (a trial). */
export function upgradeContextFromEnv(env: NodeJS.ProcessEnv): UpgradeContext | undefined {
  if (!env.BERTH_PREFIX) return undefined;
  const layout = new InstallLayout(env.BERTH_PREFIX);
  const running = layout.linked('current');
  const pid = Number(env.BERTH_LAUNCHER_PID);
  const onTrial = env.BERTH_TRIAL === '1' && Number.isSafeInteger(pid) && pid > 1 && running !== undefined && layout.trial()?.to === running;
  return { layout, running, trialLauncher: onTrial ? pid : undefined };
}

export class Trial {
  private readonly reached = new Set<TrialStage>();
  private done = false;

  /**
   * `needsBroker`: the agent has one configured, so reaching it is part of the proof. `signal` tells the
   * launcher (process.kill in production).
   */
  constructor(
    private readonly ctx: UpgradeContext & { readonly trialLauncher: number },
    private readonly needsBroker: boolean,
    private readonly signal: (pid: number, sig: NodeJS.Signals) => void,
    private readonly log: (event: string, detail: Record<string, unknown>) => void,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Records a stage; the last one needed confirms. Idempotent. */
  stage(s: TrialStage): void {
    if (this.done || this.reached.has(s)) return;
    this.reached.add(s);
    this.ctx.layout.writeProgress(s);
    const needed: TrialStage[] = this.needsBroker ? ['started', 'reconciled', 'broker'] : ['started', 'reconciled'];
    if (needed.every((n) => this.reached.has(n))) this.confirm();
  }

  private confirm(): void {
    this.done = true;
    const { layout } = this.ctx;
    const trial = layout.trial();
    if (!trial) return; // the launcher decided already (a rollback under way)
    const result: UpgradeResult = { state: 'upgraded', to: trial.to, from: trial.from, digest: trial.digest, time: this.now().toISOString() };
    layout.writeResult(result);
    // The decision: after this unlink the launcher keeps this version, whatever happens next.
    layout.removeTrial();
    const removed = [...layout.prune([trial.to, trial.from]), ...removeFlatLeftovers(layout, trial.from)];
    this.log('upgrade-confirmed', { version: trial.to, previous: trial.from, removed });
    this.signal(this.ctx.trialLauncher, 'SIGUSR1');
  }
}
