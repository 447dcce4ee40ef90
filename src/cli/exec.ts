import type { Command } from 'commander';
import { pipeline } from 'node:stream/promises';
import type { CliContext } from './context.js';
import { withEngine } from './engine.js';
import { envEntries } from './run-flags.js';
import type { ExecSpec } from '../runtime/exec.js';
import type { Terminals } from '../runtime/terminal.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from './detach-keys.js';
import { addDetachKeysFlag } from './attach.js';
import { attachSession, checkInteractiveTerminal, userTerminalSize } from './terminal.js';

const collect = (v: string, acc: string[]): string[] => [...acc, v];

interface ExecFlags {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  user?: string;
  workdir?: string;
  env: string[];
  envFile: string[];
  privileged?: boolean;
  detachKeys?: string;
}

/**
 * exec -t: the command on a new terminal. One that cannot run says why and exits 126/127, as without
 * -t; `-d` leaves it running on its terminal (nobody attached).
 */
async function execInTerminal(terminals: Terminals, container: string, spec: ExecSpec, flags: ExecFlags): Promise<number> {
  const keys = parseDetachKeys(flags.detachKeys ?? DEFAULT_DETACH_KEYS);
  if (!flags.detach) checkInteractiveTerminal(flags.interactive);
  const started = await terminals.execTerminal(container, { ...spec, tty: true }, userTerminalSize());
  if ('code' in started) {
    process.stderr.write(`${started.message}\n`);
    return started.code;
  }
  if (flags.detach) return 0;
  return attachSession(started, { interactive: flags.interactive === true, detachKeys: keys });
}

/**
 * berth exec: docker's flags and exit codes. Output is copied as it comes, stdout to stdout and stderr
 * to stderr; SIGINT/SIGTERM go to the exec'd process (docker's sig-proxy). `-t` gives it a terminal.
 */
export function registerExec(program: Command, context: () => CliContext): void {
  const command = program
    .command('exec')
    .description('run a command in a running container (exit code: the command\'s, 126 not executable, 127 not found)')
    .argument('<container>')
    .argument('<cmd...>')
    .option('-i, --interactive', 'pass this standard input to the command')
    .option('-t, --tty', 'allocate a pseudo-terminal (kept by a monitor of its own; ctrl-p ctrl-q detaches)')
    .option('-d, --detach', 'run the command in the background')
    .option('-u, --user <user>', 'user: name, uid, name:group or uid:gid')
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('-e, --env <K=V>', 'set an environment variable (repeatable; K alone takes it from this shell)', collect, [])
    .option('--env-file <file>', 'read environment variables from a file (repeatable; -e wins)', collect, [])
    .option('--privileged', 'give the command every capability')
    .passThroughOptions();
  addDetachKeysFlag(command)
    .action(async (container: string, cmd: string[], flags: ExecFlags) => {
      const ctx = context();
      process.exitCode = await withEngine(ctx, async ({ engine, terminals }) => {
        const spec: ExecSpec = {
          argv: cmd, env: envEntries(flags.envFile, flags.env, ctx.env),
          ...(flags.user !== undefined && { user: flags.user }), ...(flags.workdir !== undefined && { workdir: flags.workdir }),
          ...(flags.privileged && { privileged: true }), ...(flags.interactive && { stdin: true }),
          ...(flags.detach && { detach: true }),
        };
        if (flags.tty) return execInTerminal(terminals, container, spec, flags);
        const p = engine.execProcess(container, spec);
        const forward = (sig: NodeJS.Signals): void => p.kill(sig);
        process.on('SIGINT', forward);
        process.on('SIGTERM', forward);
        try {
          // The caller closing its end of stdin (EPIPE on a command that does not read it) is not an error.
          if (p.stdin) void pipeline(process.stdin, p.stdin).catch(() => undefined);
          const copies = [p.stdout && pipeline(p.stdout, ctx.out, { end: false }), p.stderr && pipeline(p.stderr, process.stderr, { end: false })];
          const [code] = await Promise.all([p.exit, ...copies]);
          return code;
        } finally {
          process.off('SIGINT', forward);
          process.off('SIGTERM', forward);
          // A command that exits without reading all of stdin must not keep berth waiting for more.
          if (flags.interactive) process.stdin.destroy();
        }
      });
    });
}
