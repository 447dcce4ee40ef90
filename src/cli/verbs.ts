import type { Command } from 'commander';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BerthError } from '../errors.js';
import type { ContainerEngine } from '../runtime/engine-api.js';
import { parseBytes, parseCpus, parseInteger, parseMemorySwap, parseRestart } from '../runtime/options.js';
import { filterPsOutput } from '../runtime/top.js';
import type { ContainerUpdate } from '../runtime/update.js';
import { waitNotRunning } from '../runtime/wait.js';
import type { CliContext } from './context.js';
import { holdOpen, withEngine } from './engine.js';
import { table } from './format.js';

const execFileAsync = promisify(execFile);

interface UpdateFlags {
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  pidsLimit?: string;
  restart?: string;
}

/** docker update's flags as a ContainerUpdate (absent = unchanged), each bad value named. */
export function updateFrom(f: UpdateFlags): ContainerUpdate {
  return {
    ...(f.memory !== undefined && { memory: parseBytes(f.memory, '--memory') }),
    ...(f.memoryReservation !== undefined && { memoryReservation: parseBytes(f.memoryReservation, '--memory-reservation') }),
    ...(f.memorySwap !== undefined && { memorySwap: parseMemorySwap(f.memorySwap) }),
    ...(f.cpus !== undefined && { cpus: parseCpus(f.cpus) }),
    ...(f.cpuShares !== undefined && { cpuShares: parseInteger(f.cpuShares, '--cpu-shares') }),
    ...(f.pidsLimit !== undefined && { pidsLimit: parseInteger(f.pidsLimit, '--pids-limit') }),
    ...(f.restart !== undefined && { restart: parseRestart(f.restart) }),
  };
}

/** Per-container commands that print each container's name, docker style: pause, unpause. */
function eachContainer(program: Command, context: () => CliContext, name: string, description: string, fn: (engine: ContainerEngine, c: string) => void): void {
  program.command(name).description(description).argument('<container...>').action(async (names: string[]) => {
    const ctx = context();
    await withEngine(ctx, ({ engine }) => {
      for (const n of names) {
        fn(engine, n);
        ctx.out.write(`${n}\n`);
      }
    });
  });
}

export function registerVerbs(program: Command, context: () => CliContext): void {
  eachContainer(program, context, 'pause', 'freeze every process of running containers (cgroup freezer)', (e, c) => e.freeze(c));
  eachContainer(program, context, 'unpause', 'thaw paused containers', (e, c) => e.thaw(c));

  program
    .command('wait')
    .description('block until containers stop, then print their exit codes')
    .argument('<container...>')
    .action(async (names: string[]) => {
      const ctx = context();
      const release = holdOpen();
      try {
        await withEngine(ctx, async ({ engine }) => {
          for (const n of names) ctx.out.write(`${(await waitNotRunning(engine, n))?.exitCode ?? 0}\n`);
        });
      } finally {
        release();
      }
    });

  program
    .command('rename')
    .description('rename a container')
    .argument('<container>')
    .argument('<new-name>')
    .action(async (name: string, newName: string) => {
      await withEngine(context(), ({ engine }) => void engine.rename(name, newName));
    });

  program
    .command('top')
    .description("show a running container's processes (ps over its cgroup; default ps options -ef)")
    .argument('<container>')
    .argument('[ps-options...]')
    .passThroughOptions()
    .action(async (name: string, psArgs: string[]) => {
      const ctx = context();
      await withEngine(ctx, async ({ engine }) => {
        const pids = engine.processes(name);
        let out: string;
        try {
          out = (await execFileAsync('ps', psArgs.length > 0 ? psArgs : ['-ef'], { maxBuffer: 16 << 20 })).stdout;
        } catch (err) {
          throw new BerthError('host', `ps ${psArgs.join(' ')} failed: ${(err as Error).message}`, { cause: err });
        }
        let result;
        try {
          result = filterPsOutput(out, pids);
        } catch {
          throw new BerthError('usage', `ps ${psArgs.join(' ')} prints no PID column`, { hint: 'give ps options that include the pid, e.g. -o pid,comm' });
        }
        ctx.out.write(table([result.titles, ...result.rows]));
      });
    });

  program
    .command('update')
    .description("change a container's limits and restart policy (a running one's at once)")
    .option('-m, --memory <bytes>', 'memory limit')
    .option('--memory-reservation <bytes>', 'memory soft limit')
    .option('--memory-swap <bytes>', 'memory plus swap; -1 unlimited')
    .option('--cpus <n>', 'number of CPUs')
    .option('--cpu-shares <n>', 'relative CPU weight')
    .option('--pids-limit <n>', 'process limit; -1 unlimited')
    .option('--restart <policy>', 'no, always, unless-stopped, on-failure[:N]')
    .argument('<container...>')
    .action(async (names: string[], flags: UpdateFlags) => {
      const ctx = context();
      const update = updateFrom(flags);
      await withEngine(ctx, ({ engine }) => {
        for (const n of names) {
          engine.update(n, update);
          ctx.out.write(`${n}\n`);
        }
      });
    });
}
