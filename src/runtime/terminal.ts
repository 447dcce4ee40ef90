import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BerthError } from '../errors.js';
import { DirWatch } from '../host/dir-watch.js';
import { monitorAlive, readExit } from './monitor.js';
import type { ExecSpec } from './exec.js';

/** A terminal's size, as TIOCSWINSZ and the OCI `process.consoleSize` take it. */
export interface TerminalSize {
  readonly rows: number;
  readonly cols: number;
}

/**
 * A connection to the pseudo-terminal a berth-monitor owns (native/README.md, "Terminals"): `socket`
 * carries the raw bytes both ways (what the container writes; what is typed); output no client saw
 * while none was attached (up to 64 KiB) comes first. The socket ends when the terminal's processes are
 * gone. Closing it detaches: the container and its terminal carry on.
 */
export interface TerminalConnection {
  readonly socket: net.Socket;
  /** TIOCSWINSZ through the monitor; the kernel sends SIGWINCH to the terminal's foreground group. */
  resize(size: TerminalSize): void;
}

/**
 * A terminal to attach to, and how its process ends: `exit` resolves with the exit code once the
 * monitor recorded it (255 when the monitor is gone without a record, as a dead container's).
 */
export interface TerminalSession {
  connect(): Promise<TerminalConnection>;
  exit(signal?: AbortSignal): Promise<number>;
}

/** Terminals of containers and exec sessions; LocalEngine implements it (the engine doubles have no ptys). */
export interface Terminals {
  /**
   * The terminal of a running container created with `tty`. Not running: `conflict`; no terminal:
   * `usage` naming the container.
   */
  attachTerminal(nameOrId: string): TerminalSession;
  /**
   * docker exec -t: `spec.argv` in a running container on a new terminal of `size`, owned by a monitor
   * of its own (so it survives the caller). A command that cannot run resolves `{ code, message }` with
   * docker's 126/127 instead.
   */
  execTerminal(nameOrId: string, spec: ExecSpec, size?: TerminalSize): Promise<TerminalSession | { readonly code: number; readonly message: string }>;
}

/** The monitor's socket and fifo in its state dir (native/tty.h). */
const ATTACH_SOCKET = 'attach';
const CTL_FIFO = 'ctl';

/** True when a monitor serves a terminal in `stateDir`. */
export function hasTerminal(stateDir: string): boolean {
  return fs.existsSync(path.join(stateDir, ATTACH_SOCKET));
}

/**
 * Connects to the attach socket in `stateDir`. A unix socket path holds 108 bytes and a state dir may be
 * longer: connect through /proc/self/fd/N of the opened directory, as the monitor binds it.
 */
export async function connectTerminal(stateDir: string): Promise<TerminalConnection> {
  const dirFd = fs.openSync(stateDir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(`/proc/self/fd/${dirFd}/${ATTACH_SOCKET}`);
      s.once('connect', () => resolve(s));
      s.once('error', (err) => reject(new BerthError('runtime', `cannot attach to the terminal in ${stateDir}: ${err.message}`, { cause: err })));
    });
    const ctl = path.join(stateDir, CTL_FIFO);
    return {
      socket,
      resize: ({ rows, cols }) => {
        // O_NONBLOCK: a monitor that is gone must not leave us waiting for a reader.
        try {
          const fd = fs.openSync(ctl, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
          try {
            fs.writeSync(fd, `${rows} ${cols}\n`);
          } finally {
            fs.closeSync(fd);
          }
        } catch {
          // The terminal ended meanwhile: nothing to resize.
        }
      },
    };
  } finally {
    fs.closeSync(dirFd);
  }
}

/** Waits for the monitor of `stateDir` to record the exit; 255 when it died without one. */
export async function waitMonitorExit(stateDir: string, signal?: AbortSignal): Promise<number> {
  const watch = new DirWatch(stateDir, 500);
  try {
    for (;;) {
      const exit = readExit(stateDir);
      if (exit) return exit.exitCode;
      if (!monitorAlive(stateDir)) return readExit(stateDir)?.exitCode ?? 255;
      if (signal?.aborted) throw new BerthError('runtime', 'aborted while waiting for the exit');
      await watch.wait(signal);
    }
  } finally {
    watch.close();
  }
}
