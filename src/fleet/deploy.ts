import type { FleetSigningKey } from '../protocol/signing.js';
import { DeviceTopics } from '../protocol/topics.js';
import { MAX_REVISION } from '../protocol/validate.js';
import type { ReportedState } from '../protocol/types.js';
import { BerthError } from '../errors.js';
import type { App } from '../compose/model.js';
import { atRevision } from '../compose/normalize.js';
import type { FleetLink } from './link.js';
import { Rollout, type FinalResult, type Outcome, type RolloutPolicy } from './rollout.js';
import type { FleetView } from './view.js';

export interface DeployPlanEntry {
  readonly device: string;
  readonly revision: number;
  /** The revision the device reports now (0: never deployed; undefined: never reported). */
  readonly currentRevision?: number;
  readonly online: boolean;
}

export interface DeviceOutcome extends DeployPlanEntry {
  readonly outcome: Outcome;
  readonly error?: string;
}

export interface DeploySummary {
  readonly devices: DeviceOutcome[];
  /** Why the rollout stopped sending, when the abort threshold was crossed. */
  readonly aborted?: string;
  readonly counts: Readonly<Record<Outcome, number>>;
  readonly elapsedMs: number;
}

export type DeployEvent =
  | { readonly type: 'sent'; readonly device: string; readonly revision: number }
  | { readonly type: 'progress'; readonly device: string; readonly phase: string }
  | { readonly type: 'finished'; readonly device: string; readonly outcome: FinalResult; readonly error?: string }
  | { readonly type: 'aborted'; readonly reason: string };

export interface DeployOptions extends RolloutPolicy {
  /** How long to wait for each device after its desired state was published. */
  readonly timeoutMs: number;
  /** Signs each device's desired state for that device and revision (docs/protocol.md#signed-messages). */
  readonly signer: FleetSigningKey;
}

/**
 * One plan entry per device: the next revision = max(retained desired, reported) + 1. Throws `invalid`
 * when that would pass MAX_REVISION (a device refuses it): someone published a desired state or report
 * with a revision near the bound, and only clearing it (or re-provisioning the device) helps.
 */
export function planDeploy(view: FleetView, devices: readonly string[]): DeployPlanEntry[] {
  return devices.map((device) => {
    const d = view.devices.get(device);
    const revision = view.nextRevision(device);
    if (revision > MAX_REVISION) {
      throw new BerthError('invalid', `${device}: the next revision would be ${revision}, over the protocol's maximum ${MAX_REVISION}`, {
        hint: `a retained desired state or report of ${device} carries a revision near the maximum; clear the retained berth/v1/${device}/desired (an empty retained message) or re-provision the device`,
      });
    }
    return { device, revision, ...(d?.reported && { currentRevision: d.reported.revision }), online: d?.online === true };
  });
}

/**
 * A device's final result for the rollout that sent it `revision`, from its report: superseded when it
 * runs a newer revision (another deploy overtook this one), the target's verdict for this revision,
 * undefined while it is not done (or still on an older one).
 */
export function reportOutcome(outcome: RolloutTarget['outcome'], revision: number, reported: ReportedState): FinalResult | undefined {
  return reported.revision > revision ? 'superseded' : reported.revision === revision ? outcome(reported) : undefined;
}

const FINAL: ReadonlySet<string> = new Set<FinalResult>(['applied', 'failed', 'rolled-back', 'rejected', 'superseded']);

/**
 * What a rollout publishes and when a device is done with it: a compose app (`fleet deploy`) or an agent
 * bundle (`fleet upgrade`, src/fleet/upgrade.ts). The staging, pacing, abort rule and timeouts are the same.
 */
export interface RolloutTarget {
  /** The desired state's JSON text for a device at its planned revision (executeDeploy signs it). */
  body(device: string, revision: number): string;
  /** The device's final result from a report of the planned revision, or undefined while it is not done. */
  outcome(reported: ReportedState): FinalResult | undefined;
  /** The device restarts its agent on the way (an upgrade): going offline is progress, so wait for it until the timeout. */
  readonly restartsAgent?: boolean;
}

/** An app deploy's result from a report of its revision: the deploy status once it is final. */
export function appOutcome(r: ReportedState): FinalResult | undefined {
  return FINAL.has(r.status) ? (r.status as FinalResult) : undefined;
}

/** `fleet deploy`: the app as the file gave it (compose field names); done when the revision is. */
export function appTarget(app: App): RolloutTarget {
  return {
    body: (_device, revision) => JSON.stringify(atRevision(app, revision).source),
    outcome: appOutcome,
  };
}

/**
 * Publishes each planned device's retained `desired` at the rollout's pace and follows its `reported`
 * until every sent device finished, timed out, or is offline with nothing else pending (its desired
 * state stays retained and lands when it comes back). Stops sending once the abort threshold is
 * crossed; devices already sent are still followed. `view` must be fed by `link` (status, reported,
 * desired, progress and events subscribed and synced) before this is called.
 */
export async function executeDeploy(
  link: FleetLink, view: FleetView, target: RolloutTarget, plan: readonly DeployPlanEntry[], opts: DeployOptions,
  onEvent: (e: DeployEvent) => void, signal?: AbortSignal,
): Promise<DeploySummary> {
  const started = Date.now();
  const byDevice = new Map(plan.map((p) => [p.device, p]));
  const rollout = new Rollout(plan.map((p) => p.device), opts);
  const errors = new Map<string, string>();
  let abortAnnounced = false;
  let publishError: Error | undefined;

  const check = (device: string): void => {
    const entry = byDevice.get(device);
    const r = view.devices.get(device)?.reported;
    if (!entry || !r || rollout.sentTime(device) === undefined || rollout.result(device)) return;
    const outcome = reportOutcome(target.outcome, entry.revision, r);
    if (outcome === undefined) return;
    finishDevice(device, outcome, outcome !== 'superseded' ? r.error?.message : undefined);
  };
  const finishDevice = (device: string, outcome: FinalResult, error: string | undefined): void => {
    rollout.finish(device, outcome);
    if (error !== undefined) errors.set(device, error);
    onEvent({ type: 'finished', device, outcome, ...(error !== undefined && { error }) });
    if (rollout.aborted && !abortAnnounced) {
      abortAnnounced = true;
      onEvent({ type: 'aborted', reason: rollout.aborted });
    }
  };
  // A device that refuses the message itself (a signature it does not accept, a replay) cannot say so in
  // `reported` (nobody vouched for the message): it says so in a desired-rejected event for the revision.
  const refusedByDevice = (device: string, event: Record<string, unknown>): void => {
    const entry = byDevice.get(device);
    if (!entry || event.kind !== 'desired-rejected' || event.revision !== entry.revision) return;
    if (rollout.sentTime(device) === undefined || rollout.result(device)) return;
    const message = (event.error as { message?: unknown } | undefined)?.message;
    finishDevice(device, 'rejected', typeof message === 'string' ? message : 'refused by the device');
  };

  return new Promise<DeploySummary>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let timerAt = 0;
    const unsubscribe = link.onChange((c) => {
      if (!byDevice.has(c.device)) return;
      if (c.kind === 'progress' && c.progress.revision === byDevice.get(c.device)!.revision) onEvent({ type: 'progress', device: c.device, phase: c.progress.phase });
      if (c.kind === 'reported') {
        check(c.device);
        step(false);
      } else if (c.kind === 'event') {
        refusedByDevice(c.device, c.event);
        step(false);
      } else if (c.kind === 'status') step();
    });
    let done = false;
    let interrupted = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onSignal);
      if (interrupted) {
        unsubscribe();
        reject(new BerthError('cancelled', `interrupted after sending to ${rollout.counts().sent} of ${plan.length} devices; what was sent stays retained`));
        return;
      }
      if (publishError) {
        unsubscribe();
        reject(new BerthError('network', `publishing a desired state failed: ${publishError.message}`, { cause: publishError }));
        return;
      }
      // Live messages can be lost (QoS 0 under a busy broker): the retained reported has the last word.
      const left = [...rollout.inFlight()];
      const reread = left.length === 0 ? Promise.resolve() : link.reread(['reported', 'status'], left);
      reread.then(() => {
        unsubscribe();
        resolve(summarize(plan, rollout, view, errors, Date.now() - started));
      }, (err: Error) => {
        unsubscribe();
        reject(new BerthError('network', `reading the devices' state failed: ${err.message}`, { cause: err }));
      });
    };
    const onSignal = (): void => {
      interrupted = true;
      finish();
    };
    signal?.addEventListener('abort', onSignal, { once: true });

    // Called on every report, status change and timer: sends what is due, then decides whether to
    // go on waiting. Cheap per call (no scan of the fleet) except the offline check on status changes.
    function step(checkOffline = true): void {
      if (done) return;
      const now = Date.now();
      for (const device of rollout.due(now)) {
        const { revision } = byDevice.get(device)!;
        // The signature binds the body to the device and the revision, so it cannot be replayed elsewhere.
        const payload = opts.signer.sign({ kind: 'desired', device, revision }, target.body(device, revision));
        link.publish(new DeviceTopics(device).topic('desired'), payload, { retain: true, qos: 1 }).catch((err: Error) => {
          publishError ??= err;
          finish();
        });
        onEvent({ type: 'sent', device, revision });
        check(device); // a report for this revision may already be in (a re-run after an interruption)
      }
      const nextDue = rollout.nextDueIn(now);
      const inFlight = rollout.inFlight();
      // In-flight devices were sent in order, so the first one not yet timed out has the earliest deadline.
      let nextTimeout = Infinity;
      let waiting = 0;
      for (const d of inFlight) {
        const left = rollout.sentTime(d)! + opts.timeoutMs - now;
        if (left > 0) {
          nextTimeout = Math.min(nextTimeout, left);
          waiting++;
          if (!checkOffline) break;
        }
      }
      if (nextDue === undefined && waiting === 0) return finish();
      if (nextDue === undefined && checkOffline && target.restartsAgent !== true) {
        let allOffline = true;
        for (const d of inFlight) {
          if (rollout.sentTime(d)! + opts.timeoutMs - now > 0 && view.devices.get(d)?.online === true) {
            allOffline = false;
            break;
          }
        }
        if (allOffline) return finish();
      }
      // With nothing left to send, wake at least once a second for the offline check above (reports
      // skip it); an earlier wake-up already set is kept.
      const delay = Math.max(1, Math.min(nextDue ?? 1000, nextTimeout, 2_147_000_000));
      if (timer && timerAt <= now + delay) return;
      if (timer) clearTimeout(timer);
      timerAt = now + delay;
      timer = setTimeout(() => {
        timer = undefined;
        step();
      }, delay);
    }
    step();
  });
}

function summarize(plan: readonly DeployPlanEntry[], rollout: Rollout, view: FleetView, errors: Map<string, string>, elapsedMs: number): DeploySummary {
  const counts: Record<Outcome, number> = { applied: 0, failed: 0, 'rolled-back': 0, rejected: 0, superseded: 0, offline: 0, 'timed-out': 0, 'not-sent': 0 };
  const devices = plan.map((p): DeviceOutcome => {
    const sent = rollout.sentTime(p.device) !== undefined;
    const outcome: Outcome = rollout.result(p.device) ?? (!sent ? 'not-sent' : view.devices.get(p.device)?.online === true ? 'timed-out' : 'offline');
    counts[outcome]++;
    const error = errors.get(p.device);
    return { ...p, outcome, ...(error !== undefined && { error }) };
  });
  return { devices, ...(rollout.aborted !== undefined && { aborted: rollout.aborted }), counts, elapsedMs };
}
