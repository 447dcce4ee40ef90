import { abortReason, pacedAllowance, pacedAt } from '../rollout.js';
import type { DeviceOutcome, RolloutRecord, StepDecision, StepView } from './store.js';

/**
 * One step of a stored rollout, decided from its record and a bounded view of its devices (pure, so it
 * can run inside the store's transaction and be unit-tested): the pace and abort rules of the CLI's
 * planner (src/fleet/rollout.ts) applied to the record's counters, sent devices past the rollout's
 * timeout timed out, and a rollout with nothing pending or in flight finished. Nothing here reads every
 * device row: at 10,000 devices a step that did took longer than the devices took to apply.
 */

const FINAL_RESULTS: readonly DeviceOutcome[] = ['applied', 'failed', 'rolled-back', 'rejected', 'superseded'];
const FAILURES: readonly DeviceOutcome[] = ['failed', 'rolled-back', 'rejected'];

/** Where pacing counts from: a resume restarts it (so a long pause is no backlog); else the first send. */
function paceOf(r: RolloutRecord, now: number): { at: number; sent: number } {
  return r.pace ?? { at: r.startedAt ?? now, sent: 0 };
}

/**
 * Where pacing restarts when `r` is resumed at `now`: at the resume (a long pause is no backlog sent in a
 * burst), but never before the next device was due at the pace before the pause (a short pause is no
 * shortcut: 1/min paused and resumed within a minute does not send a second device at once).
 */
export function resumedPaceAt(r: RolloutRecord, now: number): number {
  if (r.policy.ratePerMin === undefined || r.sentCount === 0) return now;
  const pace = paceOf(r, now);
  return Math.max(now, pacedAt(r.policy.ratePerMin, pace.at, r.sentCount - pace.sent));
}

/** How many more devices the pace allows at `now` (Infinity without a rate). */
function allowance(r: RolloutRecord, now: number): number {
  if (r.policy.ratePerMin === undefined) return Infinity;
  const pace = paceOf(r, now);
  return Math.max(0, pacedAllowance(r.policy.ratePerMin, pace.at, now) - (r.sentCount - pace.sent));
}

export function decideStep(r: RolloutRecord, view: StepView, now: number): StepDecision {
  const sum = (outcomes: readonly DeviceOutcome[]): number => outcomes.reduce((n, o) => n + r.counts[o], 0);
  let state = r.state;
  let reason: string | undefined;
  if (state === 'running') {
    reason = abortReason(r.policy, sum(FINAL_RESULTS), sum(FAILURES));
    if (reason !== undefined) state = 'aborted';
  }
  const send = state === 'running' ? view.next.slice(0, allowance(r, now)) : [];
  const finish = view.expired.map((device) => ({ device, outcome: 'timed-out' as const }));
  // Once aborted or cancelled, what was never sent will not be.
  const dropPending = (state === 'aborted' || state === 'cancelled') && r.counts.pending > 0;
  const inFlight = r.counts.sent - finish.length + send.length > 0;
  const pending = (state === 'running' || state === 'paused') && r.counts.pending - send.length > 0;
  const finished = !inFlight && !pending;
  const next = finished && (state === 'running' || state === 'paused') ? 'completed' : state;
  return {
    ...(send.length > 0 && { send }),
    ...(finish.length > 0 && { finish }),
    ...(dropPending && { dropPending }),
    ...((next !== r.state || finished) && { state: { state: next, ...(reason !== undefined && { reason }), finished } }),
  };
}

/**
 * When the rollout needs its next step at the latest, after `decision` was applied (a device comes due
 * or one in flight times out), or undefined when only reports move it.
 */
export function nextStepAt(r: RolloutRecord, view: StepView, decision: StepDecision, now: number): number | undefined {
  const sent = decision.send?.length ?? 0;
  let at = Infinity;
  if (sent > 0) at = now + r.policy.timeoutMs;
  // The oldest in flight may just have timed out: then a step soon finds the next oldest.
  if (view.oldestInFlightAt !== undefined) at = Math.min(at, view.oldestInFlightAt + r.policy.timeoutMs);
  const state = decision.state?.state ?? r.state;
  if (state === 'running' && r.counts.pending - sent > 0) {
    if (r.policy.ratePerMin === undefined) return now; // the rest at once: capped per step only
    const pace = paceOf(r, now);
    at = Math.min(at, pacedAt(r.policy.ratePerMin, pace.at, r.sentCount + sent - pace.sent));
  }
  return at === Infinity ? undefined : at;
}
