import type { Command } from 'commander';
import type { BoardInfo } from '../board/index.js';
import { BerthError } from '../errors.js';
import { parsePlatform } from '../image/platform.js';
import type { PullEvent, PullResult } from '../image/pull/pull.js';
import type { ImageService } from '../image/service.js';
import type { CliContext } from './context.js';
import { cachedBoard } from './engine.js';

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
      const board = cachedBoard(ctx);
      const abort = new AbortController();
      const onSignal = (): void => abort.abort(new BerthError('cancelled', 'pull interrupted; run it again to resume'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const { ImageService } = await import('../image/service.js');
      const images = ImageService.open(ctx.root, ctx.host);
      try {
        const quiet = opts.quiet === true;
        const result = await pullWithProgress(ctx, images, board, ref, { platform: opts.platform, tlsVerify: opts.tlsVerify, out: process.stdout, quiet, signal: abort.signal });
        if (quiet) ctx.out.write(`${result.image.name}@${result.image.manifestDigest}\n`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        images.close();
      }
    });
}

/**
 * Pulls `ref` for this board: the profile's platform list (or `platform`) and its download width, from
 * the registry with berth's credentials and CAs. What every command that pulls goes through.
 */
export async function pullForBoard(
  ctx: CliContext,
  images: ImageService,
  board: BoardInfo,
  ref: string,
  opts: { platform?: string | undefined; tlsVerify?: string; signal?: AbortSignal; onEvent?: (e: PullEvent) => void },
): Promise<PullResult> {
  const { openRegistryClient } = await import('./registry.js');
  return images.pull(openRegistryClient(ctx, ref, opts.tlsVerify ?? 'true'), {
    reference: ref,
    platforms: opts.platform ? [parsePlatform(opts.platform)] : board.platforms.map(parsePlatform),
    parallel: board.containerDefaults.maxParallelDownloads,
    ...(opts.signal && { signal: opts.signal }),
    ...(opts.onEvent && { onEvent: opts.onEvent }),
  });
}

/**
 * {@link pullForBoard} with progress on `out` (redrawn on a terminal, plain lines otherwise). Shared by
 * `pull` and by `run`/`create`.
 */
export async function pullWithProgress(
  ctx: CliContext,
  images: ImageService,
  board: BoardInfo,
  ref: string,
  opts: { platform?: string | undefined; tlsVerify: string; out: NodeJS.WriteStream; quiet: boolean; signal?: AbortSignal },
): Promise<PullResult> {
  const { PullProgress } = await import('./progress.js');
  const progress = new PullProgress(opts.out, opts.out.isTTY === true && !opts.quiet, opts.quiet);
  return pullForBoard(ctx, images, board, ref, { platform: opts.platform, tlsVerify: opts.tlsVerify, ...(opts.signal && { signal: opts.signal }), onEvent: progress.handle });
}
