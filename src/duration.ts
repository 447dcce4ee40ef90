import { BerthError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Go/compose-style durations: `500ms`, `10s`, `1m30s`, `2h`; a bare number is seconds (the CLI's
 * `--backoff-base 10`). `what` names the field in the error.
 */
export function parseDuration(text: string, what: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (t === '' || parts.map((p) => p[0]).join('') !== t) {
    throw new BerthError('invalid', `${what}: "${text}" is not a duration like 500ms, 10s, 1m30s or 2h`);
  }
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
  if (!Number.isSafeInteger(Math.round(ms))) throw new BerthError('invalid', `${what}: "${text}" is too long`);
  return Math.round(ms);
}

/** The inverse of {@link parseDuration} in compose's spelling: 90000 → `1m30s`, 500 → `500ms`, 0 → `0s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

/**
 * docker's `--since`/`--until` (logs, events): an RFC 3339 time (`2026-01-02T15:04:05Z`, a date alone
 * is midnight UTC), a Unix time in seconds (fractions allowed), or a duration before `now` (`10m`,
 * `1h30m`). Returns ms since the epoch; `what` names the flag in the error.
 */
export function parseTimeFlag(text: string, what: string, now = Date.now()): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const ms = Date.parse(t.replace(/(\.\d{3})\d+/, '$1'));
    if (Number.isNaN(ms)) throw new BerthError('invalid', `${what}: "${text}" is not a time like 2026-01-02T15:04:05Z`);
    return ms;
  }
  try {
    return now - parseDuration(t, what);
  } catch {
    throw new BerthError('invalid', `${what}: "${text}" is not a time (RFC 3339 or Unix seconds) nor a duration like 10m`);
  }
}
