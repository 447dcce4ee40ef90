import type { BoardInfo } from '../board/index.js';
import { BerthError } from '../errors.js';
import { formatPlatform, parsePlatform } from '../image/platform.js';
import type { ImageService } from '../image/service.js';
import type { BerthRoot, RootOptions } from '../root.js';
import type { ContainerEngine } from '../runtime/engine-api.js';
import type { Terminals } from '../runtime/terminal.js';
import { packageVersion, type CliContext } from './context.js';

/** What a container command works with: the root (for anything else it needs) and the parts most use. */
export interface EngineHandle {
  readonly root: BerthRoot;
  readonly engine: ContainerEngine;
  readonly images: ImageService;
  readonly board: BoardInfo;
  /** The engine's pseudo-terminals (run -t, exec -t, attach). */
  readonly terminals: Terminals;
}

/** The composition root's options for this invocation: the state root, host paths and environment. */
export function rootOptions(ctx: CliContext): RootOptions {
  return { root: ctx.root, host: ctx.host, env: ctx.env, profilesDir: ctx.profilesDir, version: packageVersion() };
}

/** Opens the state root (src/root.ts) for one command, and closes it after. */
export async function withCliRoot<T>(ctx: CliContext, fn: (root: BerthRoot) => Promise<T> | T): Promise<T> {
  // Loaded per command, not at start-up: `berth --version` and `berth board` need none of this, and
  // the root loads each part's modules only when the command asks for that part.
  const { withRoot } = await import('../root.js');
  return withRoot(rootOptions(ctx), fn);
}

/** {@link withCliRoot} with the container engine, the image service and the board built. */
export async function withEngine<T>(ctx: CliContext, fn: (h: EngineHandle) => Promise<T> | T): Promise<T> {
  return withCliRoot(ctx, async (root) => {
    // The board first: an unknown board is reported before the state store is touched.
    const board = root.board();
    const images = root.images();
    const engine = await root.engine();
    return fn({ root, engine, images, board, terminals: await root.terminals() });
  });
}

/** The image's name if it is already pulled; otherwise pulls it first (progress on stderr), like docker run. */
export async function ensureImage(h: EngineHandle, ref: string, platform?: string): Promise<string> {
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
  const { pullWithProgress } = await import('./progress.js');
  const r = await pullWithProgress(h.root, ref, { platform, tlsVerify: true, out: process.stderr, quiet: false });
  return r.image.name;
}

/**
 * Holds the process open while a command waits on engine events only: the engine's watches do not keep
 * Node alive (an agent's must not), so without this `wait` and `events` would end at once. Returns the release.
 */
export function holdOpen(): () => void {
  const t = setInterval(() => undefined, 1 << 30);
  return () => clearInterval(t);
}
