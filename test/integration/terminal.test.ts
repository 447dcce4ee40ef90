// Pseudo-terminals (issue 19) through bin/berth under a real pty (test/helpers/pty.ts), with crun and
// with runc: run -it, run -t, exec -it, attach, start -a -i, detach keys, resizes, the log of a
// terminal container, and a terminal that outlives a CLI killed with -9.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BERTH_BIN } from '../helpers/dist.js';
import { PtySession } from '../helpers/pty.js';
import { until, VerbsEnv } from '../helpers/verbs-env.js';

const env = new VerbsEnv('terminal/busybox');
const CTRL_P_Q = '\x10\x11';
/** busybox sh's prompt as root. */
const PROMPT = /# (\x1b\[6n)?$/;

describe.each(['crun', 'runc'])('terminals under %s', (runtime) => {
  const berthEnv = { ...process.env, BERTH_HOST_ROOT: '', BERTH_RUNTIME: runtime };
  const pty = (rows: number, cols: number, ...args: string[]): PtySession => new PtySession([BERTH_BIN, '--root', env.root, ...args], { rows, cols, env: berthEnv });
  const berth = (...args: string[]) => {
    const r = spawnSync(BERTH_BIN, ['--root', env.root, ...args], { encoding: 'utf8', env: berthEnv });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const state = (name: string): string => (JSON.parse(berth('inspect', name).stdout) as Array<{ State: { Status: string } }>)[0]!.State.Status;
  /** Types a command and waits for its output and the next prompt; returns what it printed. */
  const command = async (t: PtySession, line: string, expect: RegExp): Promise<string> => {
    const from = t.output.length;
    t.type(`${line}\r`);
    const m = await t.waitFor(expect, from);
    await t.waitFor(PROMPT, from + m.index! + m[0].length);
    return m[0];
  };

  it('run -it: a pty of the terminal\'s size that follows resizes; input echoes and runs; ctrl-p ctrl-q detaches and attach rejoins', async () => {
    const name = `it-${runtime}`;
    const t = pty(30, 100, 'run', '-it', '--name', name, env.img, 'sh');
    await t.waitFor(PROMPT);
    expect(await command(t, 'tty', /\/dev\/pts\/\d+/)).toMatch(/^\/dev\/pts\/\d+$/);
    expect(await command(t, 'stty size', /\d+ \d+/)).toBe('30 100');
    t.resize(40, 120);
    await new Promise((r) => setTimeout(r, 300));
    expect(await command(t, 'stty size', /\d+ \d+/)).toBe('40 120');
    // The typed line comes back (echo), and so does what it printed.
    const from = t.output.length;
    t.type('echo hello-$((6*7))\r');
    await t.waitFor(/echo hello-\$\(\(6\*7\)\)\r*\n(.|\r|\n)*hello-42/, from);
    t.type(CTRL_P_Q);
    expect(await t.exit).toBe(0);
    expect(state(name)).toBe('running');

    const a = pty(25, 80, 'attach', name);
    // What happened while nobody was attached comes first; then the shell answers as before.
    a.type('\r');
    await a.waitFor(PROMPT);
    expect(await command(a, 'echo again-$((1+1))', /again-2/)).toBe('again-2');
    expect(await command(a, 'stty size', /\d+ \d+/)).toBe('25 80');
    a.type('exit 3\r');
    expect(await a.exit).toBe(3);
    await until(() => state(name) === 'exited');
    // The terminal's output is the container's log.
    expect(berth('logs', name).stdout).toContain('hello-42');
    expect(berth('rm', name).code).toBe(0);
  }, 60_000);

  it('the terminal outlives a CLI killed with -9; attach sees its output', async () => {
    const name = `kill-${runtime}`;
    const t = pty(24, 80, 'run', '-it', '--name', name, env.img, 'sh');
    await t.waitFor(PROMPT);
    await command(t, 'echo before', /before\r*\n/);
    process.kill(await t.pid, 'SIGKILL');
    await t.exit;
    expect(state(name)).toBe('running');
    const a = pty(24, 80, 'attach', name);
    a.type('echo after-$((2*5))\r');
    await a.waitFor(/after-10/);
    a.type('exit 0\r');
    expect(await a.exit).toBe(0);
    expect(berth('logs', name).stdout).toMatch(/before(.|\r|\n)*after-10/);
    expect(berth('rm', name).code).toBe(0);
  }, 60_000);

  it('exec -it: a shell on its own pty; the exit code comes back; 127 for a missing command', async () => {
    const name = `ex-${runtime}`;
    expect(berth('run', '-d', '--name', name, env.img, 'sleep', '600').code).toBe(0);
    const t = pty(33, 90, 'exec', '-it', name, 'sh');
    await t.waitFor(PROMPT);
    expect(await command(t, 'tty', /\/dev\/pts\/\d+/)).toMatch(/^\/dev\/pts\/\d+$/);
    expect(await command(t, 'stty size', /\d+ \d+/)).toBe('33 90');
    t.type('exit 5\r');
    expect(await t.exit).toBe(5);
    const missing = pty(24, 80, 'exec', '-it', name, 'no-such-command');
    expect(await missing.exit).toBe(127);
    expect(missing.output).toContain('executable file not found');
    // --detach-keys: another sequence leaves the exec'd shell running.
    const d = pty(24, 80, 'exec', '-it', '--detach-keys', 'ctrl-x,x', name, 'sh');
    await d.waitFor(PROMPT);
    d.type('\x18x');
    expect(await d.exit).toBe(0);
    expect(berth('top', name).stdout).toMatch(/\bsh\b/);
    expect(berth('rm', '-f', name).code).toBe(0);
  }, 60_000);

  it('run -t without -i, start -a -i, and the log of a terminal container', async () => {
    const t = pty(24, 80, 'run', '-t', '--rm', env.img, 'sh', '-c', 'tty; exit 2');
    expect(await t.exit).toBe(2);
    expect(t.output).toMatch(/\/dev\/pts\/\d+/);

    const name = `start-${runtime}`;
    expect(berth('create', '-it', '--name', name, env.img, 'sh').code).toBe(0);
    const s = pty(20, 70, 'start', '-a', '-i', name);
    await s.waitFor(PROMPT);
    expect(await command(s, 'stty size', /\d+ \d+/)).toBe('20 70');
    s.type('echo started-ok; exit 4\r');
    expect(await s.exit).toBe(4);
    expect(berth('logs', name).stdout).toContain('started-ok');
    expect(berth('rm', name).code).toBe(0);

    // Detached from the start: the monitor keeps the terminal and logs it.
    const d = `detached-${runtime}`;
    expect(berth('run', '-dt', '--name', d, env.img, 'sh', '-c', 'tty; echo shown; sleep 600').code).toBe(0);
    await until(() => berth('logs', d).stdout.includes('shown'));
    expect(berth('logs', d).stdout).toMatch(/\/dev\/pts\/\d+\r*\n/);
    expect(berth('attach', '--no-stdin', 'nope').code).not.toBe(0);
    expect(berth('rm', '-f', d).code).toBe(0);
  }, 60_000);
});
