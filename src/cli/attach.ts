import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import { followLogs, readLogs } from '../runtime/logs.js';
import type { ContainerRecord } from '../runtime/records.js';
import type { CliContext } from './context.js';
import { writeLog } from './containers.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from './detach-keys.js';
import { withEngine, type EngineHandle } from './engine.js';
import { attachSession, checkInteractiveTerminal } from './terminal.js';

export interface AttachOptions {
  /** `-i`: what is typed goes to the container (a container with a terminal only). */
  readonly interactive?: boolean;
  /** `--detach-keys` as given; default ctrl-p,ctrl-q. */
  readonly detachKeys?: string;
  /** Send the user's window size at once (the terminal was sized by an earlier start). */
  readonly resize?: boolean;
  /** `run --rm`: the exit is read, not committed (the container is removed right after). */
  readonly peek?: boolean;
  /** Without a terminal: show the log from its start (a container just created), not from now. */
  readonly fromStart?: boolean;
}

/** The detach keys flag, shared by run, start, exec and attach. */
export function addDetachKeysFlag(cmd: Command): Command {
  return cmd.option('--detach-keys <keys>', `the key sequence that detaches, leaving the container running (default ${DEFAULT_DETACH_KEYS})`);
}

/**
 * docker attach to a running container until it exits, with its exit code: a terminal container's pty
 * (raw mode, detach keys, resizes; 0 when detached), otherwise its output as it is logged, with
 * SIGINT/SIGTERM passed to the container (docker's sig-proxy).
 */
export async function attachContainer(h: EngineHandle, id: string, opts: AttachOptions = {}): Promise<number> {
  const current = (): ContainerRecord => (opts.peek ? h.engine.peek(id) : h.engine.find(id));
  if (current().options.tty === true && current().state === 'running') {
    const keys = parseDetachKeys(opts.detachKeys ?? DEFAULT_DETACH_KEYS);
    checkInteractiveTerminal(opts.interactive);
    const session = h.terminals.attachTerminal(id);
    // The command may have ended before we connected: its output is in the log.
    return attachSession(session, { interactive: opts.interactive === true, detachKeys: keys, resizeNow: opts.resize === true }, () => {
      for (const r of readLogs(h.engine.logDir(id))) writeLog(r, false);
    });
  }
  const forward = (sig: NodeJS.Signals): void => void h.engine.kill(id, sig).catch(() => undefined);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    for await (const r of followLogs(h.engine.logDir(id), () => current().state !== 'running', undefined, opts.fromStart === true)) writeLog(r, false);
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
  return current().exitCode ?? 0;
}

export function registerAttach(program: Command, context: () => CliContext): void {
  addDetachKeysFlag(
    program
      .command('attach')
      .description('attach to a running container: its terminal (ctrl-p ctrl-q detaches), or its output until it exits')
      .argument('<container>')
      .option('--no-stdin', 'do not send what is typed to the container'),
  ).action(async (container: string, flags: { stdin: boolean; detachKeys?: string }) => {
    const ctx = context();
    process.exitCode = await withEngine(ctx, (h) => {
      const c = h.engine.find(container);
      if (c.state !== 'running') throw new BerthError('conflict', `container ${c.name} is not running`, { hint: `berth start -a ${c.name}` });
      return attachContainer(h, c.id, { interactive: flags.stdin, resize: true, ...(flags.detachKeys !== undefined && { detachKeys: flags.detachKeys }) });
    });
  });
}
