// The berth command line as a program: global options, error reporting, exit codes. Which verbs it knows is
// the caller's: main.ts registers all of them, agent-main.ts only `agent` (the agent's own bundle, so an
// idle agent loads one file: scripts/bundle.mjs).
import { Command, CommanderError, Option } from 'commander';
import { BerthError, toBerthError } from '../errors.js';
import { makeContext, packageVersion, type CliContext } from './context.js';

/** Adds one verb (or group of verbs) to the program; `context` is built from the global options when an action runs. */
export type RegisterVerb = (program: Command, context: () => CliContext) => void;

export function buildProgram(verbs: readonly RegisterVerb[]): Command {
  const program = new Command('berth')
    .description('container runtime and fleet agent for Raspberry Pi-class boards')
    .version(packageVersion(), '-V, --version')
    .addOption(new Option('--root <dir>', 'state directory (env BERTH_ROOT)').default(undefined, '/var/lib/berth'))
    .showHelpAfterError('(run berth --help for usage)')
    // So that `berth run IMAGE ls -la` hands -la to the container rather than to berth.
    .enablePositionalOptions()
    .exitOverride();
  const context = (): CliContext => makeContext(program.opts<{ root?: string }>());
  for (const register of verbs) register(program, context);
  return program;
}

function report(err: BerthError): void {
  process.stderr.write(`berth: ${err.message}\n`);
  if (err.hint !== undefined) process.stderr.write(`hint: ${err.hint}\n`);
  if (process.env.BERTH_DEBUG && err.cause instanceof Error) process.stderr.write(`${err.cause.stack ?? err.cause.message}\n`);
}

export async function main(argv: string[], verbs: readonly RegisterVerb[]): Promise<number> {
  const program = buildProgram(verbs);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed the message; help and version are not errors.
      return err.exitCode === 0 ? 0 : ERROR_USAGE;
    }
    const e = toBerthError(err);
    report(e);
    return e.exitCode;
  }
}

const ERROR_USAGE = new BerthError('usage', '').exitCode;
