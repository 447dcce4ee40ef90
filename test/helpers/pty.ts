import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/**
 * A real pseudo-terminal for the CLI under test, made by python3's pty module (node-pty is not a
 * dependency): the command runs as the session leader of a new pty of the given size, with the pty as
 * its controlling terminal; what the test writes is typed, what the command prints is collected.
 * fd 3 carries control lines: python reports "pid N" (the command's) and takes "resize ROWS COLS".
 */
const DRIVER = String.raw`
import fcntl, os, select, struct, sys, termios
rows, cols, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
master, slave = os.openpty()
def size(r, c):
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', r, c, 0, 0))
size(rows, cols)
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.closerange(3, 256)
    os.execvp(argv[0], argv)
os.close(slave)
ctl = os.fdopen(3, 'r+b', buffering=0)
ctl.write(b'pid %d\n' % pid)
buf = b''
status = None
while True:
    fds = [master, 0, 3] if status is None else [master]
    r, _, _ = select.select(fds, [], [], 0.2)
    if master in r:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b''
        if data:
            os.write(1, data)
        elif status is not None:
            break
    if 0 in r:
        data = os.read(0, 4096)
        if data:
            os.write(master, data)
    if 3 in r:
        buf += os.read(3, 256)
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            f = line.split()
            if f and f[0] == b'resize':
                size(int(f[1]), int(f[2]))  # the kernel sends SIGWINCH to the pty's foreground group
    if status is None:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p == pid:
            status = st
    elif not r:
        break
sys.exit(os.waitstatus_to_exitcode(status) & 0xff if status is not None else 255)
`;

export class PtySession {
  readonly child: ChildProcess;
  output = '';
  /** The command's pid (under the pty), once python reported it. */
  readonly pid: Promise<number>;
  readonly exit: Promise<number | null>;

  constructor(argv: readonly string[], opts: { rows: number; cols: number; env?: NodeJS.ProcessEnv }) {
    this.child = spawn('python3', ['-c', DRIVER, String(opts.rows), String(opts.cols), ...argv], { stdio: ['pipe', 'pipe', 'inherit', 'pipe'], env: opts.env ?? process.env });
    (this.child.stdout as Readable).on('data', (d: Buffer) => (this.output += d.toString()));
    const ctl = this.child.stdio[3] as Readable;
    this.pid = new Promise((resolve) => ctl.once('data', (d: Buffer) => resolve(Number(/pid (\d+)/.exec(d.toString())![1]))));
    this.exit = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  type(text: string): void {
    (this.child.stdin as Writable).write(text);
  }

  resize(rows: number, cols: number): void {
    (this.child.stdio[3] as Writable).write(`resize ${rows} ${cols}\n`);
  }

  /** Waits until the output (from `from` on) matches; the whole output in the error otherwise. */
  async waitFor(pattern: RegExp, from = 0, ms = 15_000): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.output.slice(from).match(pattern);
      if (m) return m;
      if (Date.now() > end) throw new Error(`no ${pattern} in the terminal's output:\n${JSON.stringify(this.output.slice(from))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
