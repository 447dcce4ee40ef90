import { parseDuration } from '../duration.js';
import { BerthError } from '../errors.js';
import type { HealthcheckSpec } from '../protocol/types.js';

/** A healthcheck in runnable form, compose's defaults filled in. */
export interface Healthcheck {
  /** argv to exec inside the container (a CMD-SHELL test runs as `/bin/sh -c`). */
  readonly argv: readonly string[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly startPeriodMs: number;
}

/** Compose's defaults (docker's): a check every 30 s, 30 s to answer, 3 failures in a row, no start period. */
const DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 } as const;

/** A service's healthcheck resolved to numbers; undefined when it has none or disables it. */
export function parseHealthcheck(service: string, h: HealthcheckSpec | undefined): Healthcheck | undefined {
  if (h === undefined || h.disable === true || h.test === undefined) return undefined;
  const test = typeof h.test === 'string' ? ['CMD-SHELL', h.test] : [...h.test];
  const [kind, ...rest] = test;
  if (kind === 'NONE') return undefined;
  let argv: string[];
  if (kind === 'CMD' && rest.length > 0) argv = rest;
  else if (kind === 'CMD-SHELL' && rest.length === 1) argv = ['/bin/sh', '-c', rest[0]!];
  else throw new BerthError('invalid', `services.${service}.healthcheck.test: use ["CMD", args…], ["CMD-SHELL", "command"], ["NONE"] or a string`);
  const d = (v: string | undefined, def: number, f: string): number => (v === undefined ? def : parseDuration(v, `services.${service}.healthcheck.${f}`));
  return {
    argv,
    intervalMs: d(h.interval, DEFAULTS.intervalMs, 'interval'),
    timeoutMs: d(h.timeout, DEFAULTS.timeoutMs, 'timeout'),
    retries: h.retries ?? DEFAULTS.retries,
    startPeriodMs: d(h.start_period, DEFAULTS.startPeriodMs, 'start_period'),
  };
}
