import type { BoardInfo } from '../../board/index.js';
import { parsePlatform } from '../platform.js';
import { openRegistryClient, type RegistryAccess } from '../registry/open.js';
import type { ImageService } from '../service.js';
import type { PullEvent, PullResult } from './pull.js';

export interface BoardPullOptions {
  /** `os/arch[/variant]` to pull instead of the board's preference list. */
  readonly platform?: string | undefined;
  /** Verify the registry's TLS certificate; default true. */
  readonly tlsVerify?: boolean;
  readonly signal?: AbortSignal;
  readonly onEvent?: (e: PullEvent) => void;
}

/**
 * Pulls `ref` for this board: the profile's platform list (or `platform`) and its download width, from
 * the registry with berth's credentials and CAs. What every pull goes through: `berth pull`, `run`'s
 * implicit pull, `berth deploy` and the agent (the composition root, src/root.ts, wires it).
 */
export async function pullForBoard(
  images: ImageService,
  access: RegistryAccess,
  board: Pick<BoardInfo, 'platforms' | 'containerDefaults'>,
  ref: string,
  opts: BoardPullOptions = {},
): Promise<PullResult> {
  return images.pull(openRegistryClient(access, ref, opts.tlsVerify ?? true), {
    reference: ref,
    platforms: opts.platform ? [parsePlatform(opts.platform)] : board.platforms.map(parsePlatform),
    parallel: board.containerDefaults.maxParallelDownloads,
    ...(opts.signal && { signal: opts.signal }),
    ...(opts.onEvent && { onEvent: opts.onEvent }),
  });
}
