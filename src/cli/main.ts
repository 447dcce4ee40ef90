import { Command, CommanderError, Option } from 'commander';
import { BerthError, toBerthError } from '../errors.js';
import { registerArchive } from './archive.js';
import { registerBoard } from './board.js';
import { registerCompose } from './compose.js';
import { makeContext, packageVersion, type CliContext } from './context.js';
import { registerCp } from './cp.js';
import { registerDeploy } from './deploy.js';
import { registerDoctor } from './doctor.js';
import { registerEvents } from './events.js';
import { registerAttach } from './attach.js';
import { registerExec } from './exec.js';
import { registerFleet } from './fleet.js';
import { registerFlash } from './flash.js';
import { registerAgent } from './agent.js';
import { registerContainers } from './containers.js';
import { registerImages } from './images.js';
import { registerLogin } from './login.js';
import { registerNetwork } from './network.js';
import { registerPull } from './pull.js';
import { registerRun } from './run.js';
import { registerSystem } from './system.js';
import { registerVerbs } from './verbs.js';
import { registerVolume } from './volume.js';

export function buildProgram(): Command {
  const program = new Command('berth')
    .description('container runtime and fleet agent for Raspberry Pi-class boards')
    .version(packageVersion(), '-V, --version')
    .addOption(new Option('--root <dir>', 'state directory (env BERTH_ROOT)').default(undefined, '/var/lib/berth'))
    .showHelpAfterError('(run berth --help for usage)')
    // So that `berth run IMAGE ls -la` hands -la to the container rather than to berth.
    .enablePositionalOptions()
    .exitOverride();
  const context = (): CliContext => makeContext(program.opts<{ root?: string }>());
  registerBoard(program, context);
  registerDoctor(program, context);
  registerPull(program, context);
  registerImages(program, context);
  registerArchive(program, context);
  registerLogin(program, context);
  registerRun(program, context);
  registerContainers(program, context);
  registerExec(program, context);
  registerAttach(program, context);
  registerCp(program, context);
  registerVerbs(program, context);
  registerEvents(program, context);
  registerVolume(program, context);
  registerSystem(program, context);
  registerNetwork(program, context);
  registerDeploy(program, context);
  registerCompose(program, context);
  registerAgent(program, context);
  registerFleet(program, context);
  registerFlash(program, context);
  return program;
}

function report(err: BerthError): void {
  process.stderr.write(`berth: ${err.message}\n`);
  if (err.hint !== undefined) process.stderr.write(`hint: ${err.hint}\n`);
  if (process.env.BERTH_DEBUG && err.cause instanceof Error) process.stderr.write(`${err.cause.stack ?? err.cause.message}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
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

process.exitCode = await main(process.argv);
