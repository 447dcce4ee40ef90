/**
 * The records the agent and the launcher (scripts/berth-launch) share under `<prefix>/upgrade/`: plain
 * `key=value` lines, because the launcher is a shell script that must read them when no agent can
 * run. Written atomically (temp file, fsync, rename, fsync dir) on both sides.
 */
import fs from 'node:fs';
import { isErrno } from '../../errors.js';
import { writeFileAtomic } from '../../host/fsync.js';

/** An upgrade on trial: written before the switch, removed by the new agent's confirmation. */
export interface TrialRecord {
  /** Version directory name (under versions/) on trial. */
  readonly to: string;
  /** The one to go back to. */
  readonly from: string;
  /** Seconds the new agent has to confirm once started. */
  readonly window: number;
  /** Launcher starts of `to` so far (the launcher counts). */
  readonly starts: number;
  /** The bundle index digest, for the report. */
  readonly digest: string;
}

/** Seconds a new version has to confirm unless agent.yaml's upgrade.trialWindow says otherwise (scripts/berth-launch has the same fallback). */
export const DEFAULT_TRIAL_WINDOW_S = 120;

export type UpgradeState = 'upgrading' | 'upgraded' | 'rolled-back' | 'failed';

/** The outcome of the last upgrade, read by whichever agent runs after it. */
export interface UpgradeResult {
  readonly state: UpgradeState;
  /** The version directory the upgrade went to (or tried to). */
  readonly to: string;
  readonly from?: string;
  readonly cause?: string;
  readonly digest?: string;
  readonly time: string;
}

const KEY = /^[a-z]+$/;

/** Values are single lines: a newline would let a cause forge another key for the launcher. */
export function formatRecord(fields: Readonly<Record<string, string | number | undefined>>): string {
  let out = '';
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    if (!KEY.test(k)) throw new Error(`record key ${k}`);
    out += `${k}=${String(v).replace(/[\r\n]+/g, ' ')}\n`;
  }
  return out;
}

export function parseRecord(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && KEY.test(line.slice(0, eq))) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

export function readRecordFile(file: string): Record<string, string> | undefined {
  try {
    return parseRecord(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

export function writeRecordFile(file: string, fields: Readonly<Record<string, string | number | undefined>>): void {
  writeFileAtomic(file, formatRecord(fields), 0o644);
}

export function toTrial(r: Record<string, string> | undefined): TrialRecord | undefined {
  if (!r?.to || !r.from) return undefined;
  return { to: r.to, from: r.from, window: Number(r.window) || DEFAULT_TRIAL_WINDOW_S, starts: Number(r.starts) || 0, digest: r.digest ?? '' };
}

export function toResult(r: Record<string, string> | undefined): UpgradeResult | undefined {
  const states: readonly string[] = ['upgrading', 'upgraded', 'rolled-back', 'failed'];
  if (!r?.state || !states.includes(r.state) || !r.to) return undefined;
  return {
    state: r.state as UpgradeState, to: r.to, time: r.time ?? '',
    ...(r.from && { from: r.from }), ...(r.cause && { cause: r.cause }), ...(r.digest && { digest: r.digest }),
  };
}
