import fs from 'node:fs';
import type { Command } from 'commander';
import { BerthError, ERROR_CATEGORIES, type ErrorCategory } from '../errors.js';
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
      const [{ parseYaml }, { parseDesired }, { Deployer }, { DeploymentRecords }] = await Promise.all([
        import('../yaml.js'), import('../agent/protocol/validate.js'), import('../agent/reconcile/deployer.js'), import('../store/deployments.js'),
      ]);
      let doc: unknown;
      try {
        doc = await parseYaml(fs.readFileSync(file, 'utf8'));
      } catch (err) {
        throw new BerthError((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'notFound' : 'invalid', `${file}: ${(err as Error).message}`, { cause: err });
      }
      if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new BerthError('invalid', `${file}: expected a compose mapping with services:`);
      const { services, 'x-berth': xBerth, version: _version, name: _name, ...rest } = doc as Record<string, unknown>;
      const unknown = Object.keys(rest);
      if (unknown.length > 0) throw new BerthError('invalid', `${file}: berth deploys services only; unsupported top-level keys: ${unknown.join(', ')}`);
      await withEngine(ctx, async ({ engine, images, board }) => {
        const records = new DeploymentRecords(images.store);
        const revision = (records.latest()?.revision ?? 0) + 1;
        const update = (xBerth as { update?: unknown } | undefined)?.update;
        const desired = parseDesired(JSON.stringify({ revision, services: services ?? {}, ...(update !== undefined && { update }) }));
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
