// What `berth agent` and its pull process (child.ts, started by parent.ts) say to each other over Node's
// IPC channel (JSON). One pull per process: one request in; events, then exactly one outcome, out.
import type { BoardInfo } from '../../board/index.js';
import { BerthError, ERROR_CATEGORIES, type ErrorCategory } from '../../errors.js';
import type { PullEvent } from '../../image/pull/pull.js';
import type { SnapshotMode } from '../../image/snapshot/snapshotter.js';

/**
 * The pull to run, and what the child builds its composition root from: the agent's state root, host
 * root, version and board (so it detects nothing itself and picks the platform the agent would). The
 * environment (registry credentials, the CA file) is the child's own, inherited from the agent.
 */
export interface PullChildRequest {
  readonly type: 'pull';
  readonly root: string;
  readonly hostRoot: string;
  readonly version: string;
  readonly board: BoardInfo;
  readonly snapshotMode?: SnapshotMode;
  readonly ref: string;
  /** `os/arch[/variant]` instead of the board's preference list (compose `platform`). */
  readonly platform?: string;
}

/** A failure as it crosses the process boundary: a BerthError's category, message and hint. */
export interface PullChildError {
  readonly category: ErrorCategory;
  readonly message: string;
  readonly hint?: string;
}

export type PullChildMessage =
  | { readonly type: 'event'; readonly event: PullEvent }
  | { readonly type: 'done'; readonly name: string }
  | { readonly type: 'error'; readonly error: PullChildError };

export function encodeError(e: BerthError): PullChildError {
  return { category: e.category, message: e.message, ...(e.hint !== undefined && { hint: e.hint }) };
}

/**
 * The child's failure as the agent's own BerthError, so the deploy reports the category and result code
 * an in-process pull would have. A category this build does not know (a child of another version can
 * never be started, but the message is still input) is `internal`.
 */
export function decodeError(e: PullChildError): BerthError {
  const category: ErrorCategory = Object.hasOwn(ERROR_CATEGORIES, e.category) ? e.category : 'internal';
  return new BerthError(category, e.message, e.hint === undefined ? undefined : { hint: e.hint });
}
