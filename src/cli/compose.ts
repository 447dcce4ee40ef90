import type { Command } from 'commander';
import type { ComposeReadOptions } from '../compose/file.js';
import type { CliContext } from './context.js';

/** `--profile NAME`, repeatable as docker compose's (a variadic option would swallow the file argument). */
export function profileOption(cmd: Command): Command {
  return cmd.option('--profile <name>', 'enable services of this compose profile (repeatable; COMPOSE_PROFILES too)', (v: string, acc: string[]) => [...acc, v], [] as string[]);
}

/**
 * How every command reads a compose file: this invocation's environment for interpolation, its state
 * root for the app's data directory, the enabled profiles, and compose's warnings on stderr.
 */
export function composeReadOptions(ctx: CliContext, profiles: readonly string[] | undefined, mode: 'local' | 'fleet'): ComposeReadOptions {
  return { mode, env: ctx.env, stateRoot: ctx.root, profiles: profiles ?? [], onWarning: (m) => process.stderr.write(`berth: warning: ${m}\n`) };
}

/**
 * `berth compose config [-q] FILE`: checks a compose file the way `berth deploy` and every device
 * would, without a broker, a registry or root. Exit 0 when valid; otherwise the error's category
 * (`invalid` 3, `usage` 2, `notFound` 4) with a message naming the offending key.
 */
export function registerCompose(program: Command, context: () => CliContext): void {
  const compose = program.command('compose').description('work with compose files');
  profileOption(compose.command('config'))
    .description('check a compose file and print it normalized, as berth will run it (YAML)')
    .argument('<file>', 'compose file (the services subset berth runs; x-berth: {update})')
    .option('-q, --quiet', 'only validate: print nothing, exit 0 when valid')
    .action(async (file: string, opts: { quiet?: boolean; profile?: string[] }) => {
      const { composeConfig } = await import('../compose/render.js');
      const ctx = context();
      ctx.out.write(await composeConfig(file, composeReadOptions(ctx, opts.profile, 'local'), opts.quiet === true));
    });
}
