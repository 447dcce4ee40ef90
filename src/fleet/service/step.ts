import { Rollout, type FinalResult } from '../rollout.js';
import type { DeviceOutcome, RolloutDeviceRecord, RolloutRecord, StepDecision } from './store.js';

/**
 * One step of a stored rollout, decided from its record alone (pure, so it can run inside the
 * store's transaction and be unit-tested): the staged-rollout planner of the CLI (src/fleet/rollout.ts,
 * restored from the rows) says which devices are due and whether the abort threshold is crossed;
 * sent devices past the rollout's timeout are timed out; a rollout with nothing pending or in flight
 * is finished.
 */

const FINAL_RESULTS: ReadonlySet<DeviceOutcome> = new Set<DeviceOutcome>(['applied', 'failed', 'rolled-back', 'rejected', 'superseded']);

function plannerOf(r: RolloutRecord, devices: readonly RolloutDeviceRecord[]): Rollout {
  const sent = devices
    .filter((d) => d.sentAt !== undefined)
    .sort((a, b) => a.sentAt! - b.sentAt! || a.seq - b.seq)
    .map((d) => ({ device: d.device, at: d.sentAt!, ...(FINAL_RESULTS.has(d.outcome) && { result: d.outcome as FinalResult }) }));
  return Rollout.restore(devices.map((d) => d.device), r.policy, sent);
}

export function decideStep(r: RolloutRecord, devices: readonly RolloutDeviceRecord[], now: number, maxSend = Infinity): StepDecision {
  const planner = plannerOf(r, devices);
  const finish: Array<{ device: string; outcome: DeviceOutcome }> = [];
  for (const d of devices) {
    if (d.outcome === 'sent' && d.sentAt! + r.policy.timeoutMs <= now) finish.push({ device: d.device, outcome: 'timed-out' });
  }
  let state = r.state;
  let reason: string | undefined;
  if (state === 'running' && planner.aborted !== undefined) {
    state = 'aborted';
    reason = planner.aborted;
  }
  // The planner marks what it returns as sent, so a batch cap is applied to what it is asked for:
  // the rest stays due and the next step takes it.
  const send = state === 'running' ? planner.due(now).slice(0, maxSend) : [];
  // Once aborted or cancelled, what was never sent will not be.
  if (state === 'aborted' || state === 'cancelled') {
    for (const d of devices) if (d.outcome === 'pending') finish.push({ device: d.device, outcome: 'not-sent' });
  }
  const timedOut = new Set(finish.map((f) => f.device));
  const inFlight = devices.some((d) => d.outcome === 'sent' && !timedOut.has(d.device)) || send.length > 0;
  const pending = state === 'running' || state === 'paused' ? devices.some((d) => d.outcome === 'pending' && !send.includes(d.device)) : false;
  const finished = !inFlight && !pending;
  const next = finished && (state === 'running' || state === 'paused') ? 'completed' : state;
  return {
    ...(send.length > 0 && { send }),
    ...(finish.length > 0 && { finish }),
    ...((next !== r.state || finished) && { state: { state: next, ...(reason !== undefined && { reason }), finished } }),
  };
}

/** When the rollout needs its next step at the latest (a device comes due or times out), or undefined when only reports move it. */
export function nextStepAt(r: RolloutRecord, devices: readonly RolloutDeviceRecord[], now: number): number | undefined {
  let at = Infinity;
  for (const d of devices) if (d.outcome === 'sent') at = Math.min(at, d.sentAt! + r.policy.timeoutMs);
  const due = r.state === 'running' ? plannerOf(r, devices).nextDueIn(now) : undefined;
  if (due !== undefined) at = Math.min(at, now + due);
  return at === Infinity ? undefined : at;
}
