import type { Command } from 'commander';
import { followLogs } from '../runtime/logs.js';
import type { ContainerRecord } from '../runtime/records.js';
import type { CliContext } from './context.js';
import { writeLog } from './containers.js';
import { ensureImage, withEngine } from './engine.js';
import { addRunFlags, runOptionsFrom, type RunFlags } from './run-flags.js';

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

  addRunFlags(
    program
      .command('run')
      .description('create and start a container; in the foreground, stream its output and exit with its exit code')
      .argument('<image>')
      .argument('[cmd...]')
      .option('-d, --detach', 'run in the background and print the container id')
      .option('--rm', 'remove the container when it exits')
      .passThroughOptions(),
  ).action(async (image: string, cmd: string[], flags: RunFlags & { detach?: boolean; rm?: boolean }) => {
    const ctx = context();
    process.exitCode = await withEngine(ctx, async (h) => {
      const name = await ensureImage(h, image, flags.platform);
      const options = runOptionsFrom(flags, cmd, ctx.env);
      // Only a foreground --rm is removed on exit here (by this process), so only it skips the fsyncs.
      const lifecycle = { autoRemove: flags.rm === true && !flags.detach };
      const created = h.engine.create(name, options, lifecycle);
      try {
        await h.engine.start(created.id, lifecycle);
      } catch (err) {
        if (flags.rm) await h.engine.remove(created.id, true);
        throw err;
      }
      if (flags.detach) {
        ctx.out.write(`${created.id}\n`);
        return 0;
      }
      // Like docker's sig-proxy: Ctrl-C and SIGTERM go to the container, which decides what to do.
      const forward = (sig: NodeJS.Signals): void => void h.engine.kill(created.id, sig).catch(() => undefined);
      process.on('SIGINT', forward);
      process.on('SIGTERM', forward);
      // --rm: the exit is read, not committed; the record is removed right after.
      const current = (): ContainerRecord => (flags.rm ? h.engine.peek(created.id) : h.engine.find(created.id));
      try {
        const logDir = h.engine.logDir(created.id);
        for await (const r of followLogs(logDir, () => current().state !== 'running', undefined, true)) writeLog(r, false);
      } finally {
        process.off('SIGINT', forward);
        process.off('SIGTERM', forward);
      }
      const done = current();
      if (flags.rm) await h.engine.remove(created.id, true);
      return done.exitCode ?? 0;
    });
  });
}
