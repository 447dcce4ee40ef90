import type { Command } from 'commander';
import { detectBoard } from '../board/index.js';
import { BerthError } from '../errors.js';
import { parsePlatform } from '../image/platform.js';
import type { CliContext } from './context.js';

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
      const board = detectBoard(ctx.host);
      const platforms = opts.platform ? [parsePlatform(opts.platform)] : board.platforms.map(parsePlatform);
      const abort = new AbortController();
      const onSignal = (): void => abort.abort(new BerthError('cancelled', 'pull interrupted; run it again to resume'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const [{ ImageService }, { openRegistryClient }, { PullProgress }] = await Promise.all([import('../image/service.js'), import('./registry.js'), import('./progress.js')]);
      const images = ImageService.open(ctx.root, ctx.host);
      try {
        const client = openRegistryClient(ctx, ref, opts.tlsVerify);
        const out = process.stdout;
        const progress = new PullProgress(out, out.isTTY === true && !opts.quiet, opts.quiet === true);
        const result = await images.pull(client, {
          reference: ref,
          platforms,
          parallel: board.containerDefaults.maxParallelDownloads,
          signal: abort.signal,
          onEvent: progress.handle,
        });
        if (opts.quiet) ctx.out.write(`${result.image.name}@${result.image.manifestDigest}\n`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        images.close();
      }
    });
}
