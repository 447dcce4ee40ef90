import { detectBoard, type BoardInfo } from '../board/index.js';
import { systemSearchPath } from '../host/which.js';
import { formatPlatform, parsePlatform } from '../image/platform.js';
import type { ImageService } from '../image/service.js';
import type { ContainerEngine } from '../runtime/engine.js';
import type { CliContext } from './context.js';

export interface EngineHandle {
  readonly engine: ContainerEngine;
  readonly images: ImageService;
  readonly board: BoardInfo;
}

/** Opens the image store and the container engine for one command, and closes them after. */
export async function withEngine<T>(ctx: CliContext, fn: (h: EngineHandle) => Promise<T> | T): Promise<T> {
  // Loaded per command, not at start-up: `berth --version` and `berth board` need none of this.
  const [{ ImageService }, { ContainerEngine }] = await Promise.all([import('../image/service.js'), import('../runtime/engine.js')]);
  const board = detectBoard(ctx.host);
  const images = ImageService.open(ctx.root, ctx.host);
  try {
    const engine = new ContainerEngine(images, { root: ctx.root, host: ctx.host, board, searchPath: systemSearchPath(ctx.env.PATH), ...(ctx.env.BERTH_RUNTIME ? { runtime: ctx.env.BERTH_RUNTIME } : {}) });
    return await fn({ engine, images, board });
  } finally {
    images.close();
  }
}

/** The image's name if it is already pulled; otherwise pulls it first (progress on stderr), like docker run. */
export async function ensureImage(ctx: CliContext, h: EngineHandle, ref: string, platform?: string): Promise<string> {
  let local: string | undefined;
  try {
    const found = h.images.find(ref);
    // docker semantics: --platform asks for that variant, so a local image of another platform is replaced.
    if (platform === undefined || formatPlatform(parsePlatform(platform)) === found.platform) return found.name;
    local = found.platform;
  } catch {
    // not pulled yet
  }
  {
    const [{ PullProgress }, { openRegistryClient }] = await Promise.all([import('./progress.js'), import('./registry.js')]);
    const err = process.stderr;
    err.write(local ? `Local image '${ref}' is ${local}; pulling ${platform}\n` : `Unable to find image '${ref}' locally\n`);
    const progress = new PullProgress(err, err.isTTY === true, false);
    const r = await h.images.pull(openRegistryClient(ctx, ref, 'true'), {
      reference: ref,
      platforms: platform ? [parsePlatform(platform)] : h.board.platforms.map(parsePlatform),
      parallel: h.board.containerDefaults.maxParallelDownloads,
      onEvent: progress.handle,
    });
    return r.image.name;
  }
}
