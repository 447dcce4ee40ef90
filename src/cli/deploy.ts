import type { Command } from 'commander';
import { ERROR_CATEGORIES, type ErrorCategory } from '../errors.js';
import type { PullEvent } from '../image/pull/pull.js';
import type { CliContext } from './context.js';
import { withEngine } from './engine.js';
import { pullForBoard } from './pull.js';
import { printJson } from './format.js';

export function registerDeploy(program: Command, context: () => CliContext): void {
  program
    .command('deploy')
    .description('apply a compose file (services subset) locally, through the same reconciler as fleet deploys')
    .argument('<file>', 'YAML with services: (compose field names); x-berth: {update: {strategy, health_window, on_failure}}')
    .option('--json', 'print the outcome as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const ctx = context();
      const [{ readComposeFile }, { atRevision }, { Deployer }, { DeploymentRecords }] = await Promise.all([
        import('../compose/file.js'), import('../compose/normalize.js'), import('../agent/reconcile/deployer.js'), import('../store/deployments.js'),
      ]);
      // Read and normalized before the store is opened: a bad file changes nothing.
      const app = await readComposeFile(file);
      await withEngine(ctx, async ({ engine, images, board }) => {
        const records = new DeploymentRecords(images.store);
        const revision = (records.latest()?.revision ?? 0) + 1;
        const desired = atRevision(app, revision);
        const pull = async (ref: string, signal: AbortSignal, onEvent: (e: PullEvent) => void): Promise<string> => {
          process.stderr.write(`pulling ${ref}\n`);
          return (await pullForBoard(ctx, images, board, ref, { signal, onEvent })).image.name;
        };
        const deployer = new Deployer({
          engine, images, board, records, pull,
          onEvent: (e) => {
            if (!opts.json && e.type === 'progress' && e.phase !== 'pull') process.stderr.write(`${e.phase}${e.service ? ` ${e.service}` : ''}\n`);
          },
        });
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
