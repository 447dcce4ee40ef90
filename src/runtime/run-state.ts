// What a container's monitor files say about its current run, against what its record says. The record
// holds the last known state; the monitor (which outlives berth) writes monitor.pid when it starts, the
// runtime writes container.pid when the container exists, and the monitor writes `exit` when it ends.
// Every engine read reconciles the two here, so a berth killed at any point is corrected by the next one.
import fs from 'node:fs';
import path from 'node:path';
import { monitorAlive, readContainerPid, readExit } from './monitor.js';
import type { ContainerRecord } from './records.js';

/** How a run the record calls running ended: its exit, or `dead` when the monitor went without writing one. */
export interface EndedRun {
  readonly kind: 'ended';
  readonly exitCode: number;
  readonly oomKilled: boolean;
  readonly finishedAt: number;
  readonly state: 'exited' | 'dead';
}

/** A run the record does not know of: a start killed after the monitor ran the container, before it was recorded. */
export interface AdoptedRun {
  readonly kind: 'started';
  readonly startedAt: number;
}

/**
 * What the record must learn from the monitor's files, or undefined when it is up to date.
 *
 * A record that says running learns its run's end. A record that says created or exited learns of a run
 * begun by a start that was killed (kill -9 of berth or the agent) after its monitor ran the container
 * but before the record said so: the monitor outlives its caller, so the container runs. Adopting it as
 * the current run (its start time: when the runtime wrote the container's pid) lets a later start find
 * it running instead of asking the runtime to run the id a second time ("container with given ID
 * already exists"), and stop or rm end it.
 */
export function observeRun(c: ContainerRecord, stateDir: string): EndedRun | AdoptedRun | undefined {
  if (c.state === 'running') return endedRun(stateDir);
  if (!monitorAlive(stateDir) || readContainerPid(stateDir) === undefined) return undefined;
  let startedAt: number;
  try {
    startedAt = Math.round(fs.statSync(path.join(stateDir, 'container.pid')).mtimeMs);
  } catch {
    return undefined;
  }
  // The pid file of the run the record already knows (or older): nothing new.
  return c.startedAt !== undefined && startedAt <= c.startedAt ? undefined : { kind: 'started', startedAt };
}

/** The record as `seen` makes it, in memory only (for callers that do not commit it). */
export function withRun(c: ContainerRecord, seen: EndedRun | AdoptedRun): ContainerRecord {
  if (seen.kind === 'started') {
    const { finishedAt: _f, exitCode: _e, ...rest } = c;
    return { ...rest, state: 'running', startedAt: seen.startedAt, oomKilled: false, stoppedByUser: false };
  }
  const { kind: _k, ...ended } = seen;
  return { ...c, ...ended };
}

/** True when a run may have been begun under `stateDir` (its monitor writes monitor.pid before it runs anything). */
export function runBegun(c: ContainerRecord, stateDir: string): boolean {
  return c.startedAt !== undefined || fs.existsSync(path.join(stateDir, 'monitor.pid'));
}

/** How the current run ended, from the monitor's files; undefined while it runs. */
function endedRun(stateDir: string): EndedRun | undefined {
  const exit = readExit(stateDir);
  if (exit) return { kind: 'ended', exitCode: exit.exitCode, oomKilled: exit.oomKilled, finishedAt: Date.parse(exit.finishedAt) || Date.now(), state: 'exited' };
  // The monitor was killed (or the board rebooted) before the container's exit was recorded.
  if (!monitorAlive(stateDir)) return { kind: 'ended', exitCode: 255, oomKilled: false, finishedAt: Date.now(), state: 'dead' };
  return undefined;
}
