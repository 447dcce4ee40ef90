import type { Command } from 'commander';
import { BerthError } from '../errors.js';
import type { CliContext } from './context.js';
import { withCliRoot } from './engine.js';
import { parseBool } from './registry.js';

export function registerPull(program: Command, context: () => CliContext): void {
  program
    .command('pull')
    .description("pull an image, picking the variant for this board's platform")
    .argument('<ref>', 'image reference, e.g. busybox, 127.0.0.1:5000/app:1, app@sha256:…')
    .option('--platform <os/arch[/variant]>', "pull this platform instead of the board's preference list")
    .option('-q, --quiet', 'print only warnings and the result')
    .option('--tls-verify <bool>', 'verify the registry TLS certificate (true|false)', 'true')
    .action(async (ref: string, opts: { platform?: string; quiet?: boolean; tlsVerify: string }) => {
      const ctx = context();
      const tlsVerify = parseBool(opts.tlsVerify, '--tls-verify');
      await withCliRoot(ctx, async (root) => {
        const abort = new AbortController();
        const onSignal = (): void => abort.abort(new BerthError('cancelled', 'pull interrupted; run it again to resume'));
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          const { pullWithProgress } = await import('./progress.js');
          const quiet = opts.quiet === true;
          const result = await pullWithProgress(root, ref, { platform: opts.platform, tlsVerify, out: process.stdout, quiet, signal: abort.signal });
          if (quiet) ctx.out.write(`${result.image.name}@${result.image.manifestDigest}\n`);
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      });
    });
}
