import type { Command } from 'commander';
import type { CliContext } from './context.js';

/**
 * `berth compose config [-q] FILE`: checks a compose file the way `berth deploy` and every device
 * would, without a broker, a registry or root. Exit 0 when valid; otherwise the error's category
 * (`invalid` 3, `usage` 2, `notFound` 4) with a message naming the offending key.
 */
export function registerCompose(program: Command, context: () => CliContext): void {
  const compose = program.command('compose').description('work with compose files');
  compose
    .command('config')
    .description('check a compose file and print it normalized, as berth will run it (YAML)')
    .argument('<file>', 'compose file (the services subset berth runs; x-berth: {update})')
    .option('-q, --quiet', 'only validate: print nothing, exit 0 when valid')
    .action(async (file: string, opts: { quiet?: boolean }) => {
      const { composeConfig } = await import('../compose/render.js');
      context().out.write(await composeConfig(file, opts.quiet === true));
    });
}
