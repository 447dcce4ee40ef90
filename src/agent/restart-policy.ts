import type { ContainerRecord } from '../runtime/records.js';

export interface BackoffConfig {
  /** First delay; doubles with each consecutive restart. IoT Edge and berth: 10 s. */
  readonly baseMs: number;
  readonly maxMs: number;
  /** A container that stayed up this long is healthy again: its backoff starts over. */
  readonly healthyAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffConfig = { baseMs: 10_000, maxMs: 300_000, healthyAfterMs: 10 * 60_000 };

/** `min(base · 2^n, max)`, n = restarts in a row. */
export function backoffDelay(consecutive: number, cfg: BackoffConfig): number {
  return Math.min(cfg.baseMs * 2 ** Math.min(consecutive, 30), cfg.maxMs);
}

export type RestartDecision = { restart: false; reason: string } | { restart: true; atMs: number; delayMs: number };

/**
 * Whether, and when, an exited container is restarted (docker's semantics): `always` and
 * `unless-stopped` unless the user stopped it; `on-failure[:N]` for a non-zero exit, at most N times.
 * Pure: the supervisor supplies the clock and the count of restarts in a row.
 */
export function decideRestart(c: ContainerRecord, consecutive: number, cfg: BackoffConfig): RestartDecision {
  if (c.state !== 'exited' && c.state !== 'dead') return { restart: false, reason: `state ${c.state}` };
  const policy = c.options.restart;
  if (policy.name === 'no') return { restart: false, reason: 'restart policy no' };
  if (c.stoppedByUser) return { restart: false, reason: 'stopped by the user' };
  if (policy.name === 'on-failure') {
    if (c.exitCode === 0) return { restart: false, reason: 'exited 0 (on-failure)' };
    if (policy.maxRetries !== undefined && c.restartCount >= policy.maxRetries) return { restart: false, reason: `gave up after ${c.restartCount} restarts` };
  }
  const delayMs = backoffDelay(consecutive, cfg);
  return { restart: true, atMs: (c.finishedAt ?? Date.now()) + delayMs, delayMs };
}
