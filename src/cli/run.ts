import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import { addDetachKeysFlag, attachContainer } from './attach.js';
import type { CliContext } from './context.js';
import { ensureImage, withEngine } from './engine.js';
import { addRunFlags, runOptionsFrom, type RunFlags } from './run-flags.js';
import { checkInteractiveTerminal, userTerminalSize } from './terminal.js';

export function registerRun(program: Command, context: () => CliContext): void {
  addRunFlags(
    program
      .command('create')
      .description('create a container from an image (pulled if missing) without starting it')
      .argument('<image>')
      .argument('[cmd...]')
      .passThroughOptions(),
  ).action(async (image: string, cmd: string[], flags: RunFlags) => {
    const ctx = context();
    await withEngine(ctx, async (h) => {
      const name = await ensureImage(h, image, flags.platform);
      ctx.out.write(`${h.engine.create(name, runOptionsFrom(flags, cmd, ctx.env)).id}\n`);
    });
  });

  const run = addRunFlags(
    program
      .command('run')
      .description('create and start a container; in the foreground, stream its output and exit with its exit code')
      .argument('<image>')
      .argument('[cmd...]')
      .option('-d, --detach', 'run in the background and print the container id')
      .option('--rm', 'remove the container when it exits')
      .passThroughOptions(),
  );
  addDetachKeysFlag(run).action(async (image: string, cmd: string[], flags: RunFlags & { detach?: boolean; rm?: boolean; detachKeys?: string }) => {
    const ctx = context();
    process.exitCode = await withEngine(ctx, async (h) => {
      const name = await ensureImage(h, image, flags.platform);
      const options = runOptionsFrom(flags, cmd, ctx.env);
      // Only a foreground --rm is removed on exit here (by this process), so only it skips the fsyncs.
      const lifecycle = { autoRemove: flags.rm === true && !flags.detach };
      if (flags.interactive && !flags.tty && !flags.detach) throw new BerthError('usage', 'run -i needs -t: berth passes input to a container through its terminal only', { hint: 'berth run -it IMAGE, or berth exec -i for piped input' });
      if (flags.tty && !flags.detach) checkInteractiveTerminal(flags.interactive);
      const created = h.engine.create(name, options, lifecycle);
      const size = flags.tty && !flags.detach ? userTerminalSize() : undefined;
      try {
        await h.engine.start(created.id, { ...lifecycle, ...(size && { consoleSize: size }) });
      } catch (err) {
        if (flags.rm) await h.engine.remove(created.id, true);
        throw err;
      }
      if (flags.detach) {
        ctx.out.write(`${created.id}\n`);
        return 0;
      }
      const code = await attachContainer(h, created.id, {
        peek: flags.rm === true, fromStart: true, ...(flags.interactive && { interactive: true }), ...(flags.detachKeys !== undefined && { detachKeys: flags.detachKeys }),
      });
      // Detached from its terminal: it carries on (and is not removed, --rm or not).
      if (h.engine.peek(created.id).state === 'running') return code;
      if (flags.rm) await h.engine.remove(created.id, true);
      return code;
    });
  });
}
