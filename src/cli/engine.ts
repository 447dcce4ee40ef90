import { boardCacheFile, detectBoardCached, type BoardInfo } from '../board/index.js';
import { BerthError } from '../errors.js';
import { systemSearchPath } from '../host/which.js';
import { formatPlatform, parsePlatform } from '../image/platform.js';
import type { ImageService } from '../image/service.js';
import type { ContainerEngine } from '../runtime/engine-api.js';
import { packageVersion, type CliContext } from './context.js';

export interface EngineHandle {
  readonly engine: ContainerEngine;
  readonly images: ImageService;
  readonly board: BoardInfo;
}

/** Opens the image store and the container engine for one command, and closes them after. */
export async function withEngine<T>(ctx: CliContext, fn: (h: EngineHandle) => Promise<T> | T): Promise<T> {
  // Loaded per command, not at start-up: `berth --version` and `berth board` need none of this.
  const [{ ImageService }, { LocalEngine }] = await Promise.all([import('../image/service.js'), import('../runtime/engine.js')]);
  const board = cachedBoard(ctx);
  const images = ImageService.open(ctx.root, ctx.host);
  try {
    const engine = new LocalEngine(images, { root: ctx.root, host: ctx.host, board, searchPath: systemSearchPath(ctx.env.PATH), ...(ctx.env.BERTH_RUNTIME ? { runtime: ctx.env.BERTH_RUNTIME } : {}) });
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
  } catch (err) {
    // Only "not pulled yet" leads to a pull; an ambiguous digest prefix and the like are the user's to fix.
    if (!(err instanceof BerthError && err.category === 'notFound')) throw err;
  }
  process.stderr.write(local ? `Local image '${ref}' is ${local}; pulling ${platform}\n` : `Unable to find image '${ref}' locally\n`);
  const { pullWithProgress } = await import('./pull.js');
  const r = await pullWithProgress(ctx, h.images, h.board, ref, { platform, tlsVerify: 'true', out: process.stderr, quiet: false });
  return r.image.name;
}

/** The board, from the detection cache under the state root (see board/cache.ts): `run` and `pull` only need it. */
export function cachedBoard(ctx: CliContext): BoardInfo {
  return detectBoardCached(ctx.host, ctx.profilesDir, { file: boardCacheFile(ctx.root), version: packageVersion() });
}
