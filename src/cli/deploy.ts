import type { Command } from 'commander';
import { ERROR_CATEGORIES, type ErrorCategory } from '../errors.js';
import { composeReadOptions, profileOption } from './compose.js';
import type { CliContext } from './context.js';
import { withEngine } from './engine.js';
import { printJson } from './format.js';

export function registerDeploy(program: Command, context: () => CliContext): void {
  profileOption(program.command('deploy'))
    .description('apply a compose file (services subset) locally, through the same reconciler as fleet deploys')
    .argument('<file>', 'YAML with services: (compose field names); x-berth: {update: {strategy, health_window, on_failure}}')
    .option('--json', 'print the outcome as JSON')
    .action(async (file: string, opts: { json?: boolean; profile?: string[] }) => {
      const ctx = context();
      const [{ readComposeFile }, { atRevision }] = await Promise.all([import('../compose/file.js'), import('../compose/normalize.js')]);
      // Read and normalized before the store is opened: a bad file changes nothing.
      const app = await readComposeFile(file, composeReadOptions(ctx, opts.profile, 'local'));
      await withEngine(ctx, async ({ root }) => {
        const revision = (root.deployments().latest()?.revision ?? 0) + 1;
        const desired = atRevision(app, revision);
        const deployer = await root.deployer(
          (e) => {
            if (opts.json || e.type !== 'progress' || e.phase === 'pull') return;
            const what = e.service ?? e.network ?? e.volume;
            process.stderr.write(`${e.phase}${what ? ` ${what}` : ''}\n`);
          },
          { onPull: (ref) => process.stderr.write(`pulling ${ref}\n`) },
        );
        const abort = new AbortController();
        const onSignal = (): void => abort.abort();
        process.once('SIGINT', onSignal);
        try {
          const outcome = await deployer.apply(desired, abort.signal);
          if (opts.json) printJson(ctx.out, outcome);
          else ctx.out.write(`revision ${outcome.revision}: ${outcome.status}${outcome.error ? ` (${outcome.error.message})` : ''}\n`);
          if (outcome.status !== 'applied') {
            const code = outcome.error?.code;
            process.exitCode = ERROR_CATEGORIES[code !== undefined && code in ERROR_CATEGORIES ? (code as ErrorCategory) : 'runtime'].exit;
          }
        } finally {
          process.off('SIGINT', onSignal);
        }
      });
    });
}
