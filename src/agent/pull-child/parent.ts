// The agent's side of pulls in a child process (child.ts): `berth agent` runs in V8's lite mode (bin/berth),
// which keeps its idle RSS low but made its pulls take 1.7-1.9x the time and +40-65 % CPU (BENCHMARKS.md,
// issue 22). Each pull runs in its own short-lived `berth agent-pull` with full JIT instead; its peak memory
// leaves with it.
import { spawn } from 'node:child_process';
import type { BoardInfo } from '../../board/index.js';
import { BerthError } from '../../errors.js';
import type { HostPaths } from '../../host/paths.js';
import type { SnapshotMode } from '../../image/snapshot/snapshotter.js';
import type { PullFn } from '../reconcile/deployer.js';
import { decodeError, type PullChildError, type PullChildMessage, type PullChildRequest } from './protocol.js';

export interface ChildPullOptions {
  /** This install's bin/berth: the child starts as every berth process does (the board's Node, its loader, its flags). */
  readonly launcher: string;
  /** The agent's state root, host paths, version and board: the child's composition root is built from them. */
  readonly root: string;
  readonly host: HostPaths;
  readonly version: string;
  readonly board: BoardInfo;
  readonly snapshotMode?: SnapshotMode | undefined;
  /** The child's environment: the agent's (registry credentials, the CA file). */
  readonly env: NodeJS.ProcessEnv;
  /** How long a cancelled pull may take to stop before it is killed; default 10 s. */
  readonly graceMs?: number;
}

/**
 * A deployer's PullFn that runs each pull in a child process. Contract, as an in-process pull: resolves to
 * the local image's name once the image is recorded in the store (by the child, in the same state root);
 * rejects with the child's BerthError (same category, so the same result code), or `internal` when the
 * child ended without saying why (killed, crashed). Events arrive as the child reports them. When `signal`
 * aborts, the child is sent SIGTERM (killed after `graceMs`) and the promise settles only once it has exited,
 * so a superseding deploy never pulls beside it. If the agent dies, the child sees its IPC channel close and
 * aborts (child.ts): no orphan keeps pulling.
 */
export function childPull(o: ChildPullOptions): PullFn {
  return (ref, signal, onEvent, platform) => new Promise<string>((resolve, reject) => {
    signal.throwIfAborted();
    const child = spawn(o.launcher, ['agent-pull'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: o.env, serialization: 'json' });
    let outcome: { readonly name: string } | { readonly error: PullChildError } | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const cancel = (): void => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), o.graceMs ?? 10_000);
    };
    signal.addEventListener('abort', cancel, { once: true });
    child.on('message', (m: PullChildMessage) => {
      if (m.type === 'event') onEvent(m.event);
      else if (outcome === undefined) outcome = m.type === 'done' ? { name: m.name } : { error: m.error };
    });
    // Only a child that never started: then no 'close' follows. (Other errors, a failed kill or send, end in 'close'.)
    child.once('error', (err) => {
      if (child.pid !== undefined) return;
      signal.removeEventListener('abort', cancel);
      reject(new BerthError('host', `cannot start the pull process ${o.launcher}: ${err.message}`));
    });
    // 'close', not 'exit': every message the child sent has been read by then.
    child.once('close', (code, sig) => {
      signal.removeEventListener('abort', cancel);
      clearTimeout(killTimer);
      if (outcome !== undefined && 'name' in outcome) resolve(outcome.name);
      else if (outcome !== undefined) reject(decodeError(outcome.error));
      else if (signal.aborted) reject(new BerthError('cancelled', `pull of ${ref} cancelled`));
      else reject(new BerthError('internal', `the pull process for ${ref} ended without a result (${sig !== null ? `signal ${sig}` : `exit code ${code}`})`, { hint: 'its stderr is in the agent\'s log (journalctl -u berth-agent)' }));
    });
    const request: PullChildRequest = {
      type: 'pull', root: o.root, hostRoot: o.host.hostRoot, version: o.version, board: o.board, ref,
      ...(o.snapshotMode !== undefined && { snapshotMode: o.snapshotMode }), ...(platform !== undefined && { platform }),
    };
    // A child that failed to start has no channel: its 'error' and 'close' say so.
    if (child.connected) child.send(request);
  });
}
