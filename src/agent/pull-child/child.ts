// The pull process: `berth agent-pull`, started by the agent (parent.ts) through bin/berth, so with the
// board's Node and loader like every berth process, but without the agent's lite mode: a pull's tar
// parsing and hashing run in JIT-compiled code (1.7-1.9x faster than in the lite agent, BENCHMARKS.md,
// issue 22), and the pull's peak memory leaves with this process instead of staying in the agent's heap.
import { BerthError, toBerthError } from '../../errors.js';
import { hostPaths } from '../../host/paths.js';
import { BerthRoot } from '../../root.js';
import { encodeError, type PullChildMessage, type PullChildRequest } from './protocol.js';

/** How long an abort (the agent gone, or SIGTERM) may take to close the pull before the process just exits. */
const ABORT_GRACE_MS = 5000;

/**
 * Runs the one pull the agent sends over the IPC channel, through the composition root's pull (the same
 * path as `berth pull`: credentials, CAs, content store, snapshots, records), reporting its events and
 * outcome back; resolves to the exit code. SIGTERM (the deploy was superseded) or the channel closing (the
 * agent stopped or was killed) aborts the pull the way Ctrl-C aborts `berth pull`: finished blobs and
 * snapshots stay, a partial blob stays in the content store's ingest for the next pull to resume.
 */
export async function servePull(): Promise<number> {
  const send = process.send?.bind(process);
  if (send === undefined) {
    process.stderr.write('berth: agent-pull runs pulls for `berth agent`, which starts it; use `berth pull`\n');
    return 2;
  }
  const abort = new AbortController();
  const stop = (why: string): void => {
    if (abort.signal.aborted) return;
    abort.abort(new BerthError('cancelled', why));
    // A pull stuck where the abort cannot reach (a syscall) must not outlive the agent.
    setTimeout(() => process.exit(1), ABORT_GRACE_MS).unref();
  };
  const gone = (): void => stop('the agent went away during the pull');
  process.once('SIGTERM', () => stop('pull cancelled by the agent'));
  process.once('disconnect', gone);
  const req = await new Promise<PullChildRequest>((resolve) => process.once('message', (m) => resolve(m as PullChildRequest)));
  // Resolves once the message is written: the outcome must be out before the channel closes.
  const reply = (m: PullChildMessage): Promise<void> => new Promise((resolve) => {
    if (!process.connected) resolve();
    else send(m, undefined, undefined, () => resolve());
  });
  const root = new BerthRoot({
    root: req.root, host: hostPaths(req.hostRoot), env: process.env, version: req.version, board: req.board,
    ...(req.snapshotMode !== undefined && { snapshotMode: req.snapshotMode }),
  });
  let code = 0;
  try {
    const r = await root.pull(req.ref, { signal: abort.signal, onEvent: (event) => void reply({ type: 'event', event }), ...(req.platform !== undefined && { platform: req.platform }) });
    await reply({ type: 'done', name: r.image.name });
  } catch (err) {
    // An abort surfaces as whatever the aborted operation threw: the reason says what happened.
    const e = abort.signal.aborted ? toBerthError(abort.signal.reason) : toBerthError(err);
    await reply({ type: 'error', error: encodeError(e) });
    code = e.exitCode;
  } finally {
    root.close();
  }
  // Closing the channel ourselves is not the agent going away; with it closed, nothing keeps this process alive.
  process.off('disconnect', gone);
  if (process.connected) process.disconnect();
  return code;
}
