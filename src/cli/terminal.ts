import { BerthError } from '../errors.js';
import type { TerminalConnection, TerminalSession, TerminalSize } from '../runtime/terminal.js';
import { DetachMatcher } from './detach-keys.js';

/** The user's terminal size, when stdout is one. */
export function userTerminalSize(): TerminalSize | undefined {
  const out = process.stdout;
  return out.isTTY && out.rows > 0 && out.columns > 0 ? { rows: out.rows, cols: out.columns } : undefined;
}

/** docker's rule: `-i -t` needs a terminal to read from; `-t` alone does not. */
export function checkInteractiveTerminal(interactive: boolean | undefined): void {
  if (interactive && !process.stdin.isTTY) throw new BerthError('usage', 'the input device is not a TTY', { hint: 'drop -t to pipe input to the command, or run berth from a terminal' });
}

export interface TerminalIoOptions {
  /** `-i`: what is typed goes to the container (the user's terminal in raw mode); otherwise nothing does. */
  readonly interactive: boolean;
  readonly detachKeys: Uint8Array;
  /** Send the current size on connect (attach to a terminal that was sized by someone else). */
  readonly resizeNow?: boolean;
}

/**
 * Joins the user's terminal to a container's: raw mode (restored on every way out, signals included),
 * typed bytes to the container until the detach keys, its output to stdout, and the window size on
 * every resize (SIGWINCH, which node reports as stdout's `resize`). Resolves `ended` when the
 * terminal's processes are gone, `detached` on the detach keys or when berth is told to stop
 * (SIGTERM, SIGHUP: the container carries on, as with the keys).
 */
export async function joinTerminal(conn: TerminalConnection, opts: TerminalIoOptions): Promise<'ended' | 'detached'> {
  const stdin = process.stdin;
  const raw = opts.interactive && stdin.isTTY;
  const matcher = new DetachMatcher(opts.detachKeys);
  const resize = (): void => {
    const size = userTerminalSize();
    if (size) conn.resize(size);
  };
  let finish: (how: 'ended' | 'detached') => void = () => undefined;
  const done = new Promise<'ended' | 'detached'>((resolve) => (finish = resolve));
  const onData = (chunk: Buffer): void => {
    const { forward, detach } = matcher.feed(chunk);
    if (forward.length > 0) conn.socket.write(forward);
    if (detach) finish('detached');
  };
  const onStop = (): void => finish('detached');
  conn.socket.on('data', (d: Buffer) => process.stdout.write(d));
  conn.socket.once('close', () => finish('ended'));
  conn.socket.on('error', () => finish('ended'));
  process.stdout.on('resize', resize);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', onStop);
  try {
    if (raw) stdin.setRawMode(true);
    if (opts.interactive) stdin.on('data', onData).resume();
    if (opts.resizeNow) resize();
    return await done;
  } finally {
    if (raw) stdin.setRawMode(false);
    stdin.off('data', onData);
    // A paused tty stdin still holds the event loop: nothing more will be read from it.
    if (opts.interactive) stdin.destroy();
    process.stdout.off('resize', resize);
    process.off('SIGTERM', onStop);
    process.off('SIGHUP', onStop);
    conn.socket.destroy();
  }
}

/**
 * Attaches to a session and waits for its process: its exit code, or 0 when detached (docker's code
 * for ctrl-p ctrl-q). `onGone` is called when the terminal was gone before we connected (a command
 * that ended at once): the caller shows what it can (the log).
 */
export async function attachSession(session: TerminalSession, opts: TerminalIoOptions, onGone?: () => void): Promise<number> {
  let conn: TerminalConnection;
  try {
    conn = await session.connect();
  } catch (err) {
    // Gone because the process ended (its exit is on record, or is about to be): not an error.
    const code = await session.exit(AbortSignal.timeout(3000)).catch(() => {
      throw err;
    });
    if (!onGone) throw err;
    onGone();
    return code;
  }
  if ((await joinTerminal(conn, opts)) === 'detached') return 0;
  return session.exit();
}
