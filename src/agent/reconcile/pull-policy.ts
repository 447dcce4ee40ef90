import type { BoardInfo } from '../../board/index.js';
import type { App, AppService } from '../../compose/model.js';
import { BerthError } from '../../errors.js';
import { formatPlatform, parsePlatform } from '../../image/platform.js';
import type { ImageRecord } from '../../store/images.js';

/**
 * compose's `platform` and `pull_policy` on the device, where the board and its images are known: the
 * deployer asks {@link checkPlatforms} before a deploy changes anything, then {@link pullDecision} at
 * each pull step (one per container it creates). `berth deploy` and the agent share the deployer, so
 * both apply them alike.
 */

/**
 * Refuses (`invalid`, before any step) a service whose `platform` this board cannot run, naming the
 * service, the platform and what the board runs: a pull would fetch an image that fails at exec.
 */
export function checkPlatforms(app: App, board: Pick<BoardInfo, 'platforms' | 'profileName'>): void {
  const runs = board.platforms.map((p) => formatPlatform(parsePlatform(p)));
  for (const s of app.services.values()) {
    if (s.platform === undefined || runs.includes(s.platform)) continue;
    throw new BerthError('invalid', `service ${s.name}: platform ${s.platform} cannot run on this board (${board.profileName} runs ${runs.join(', ')})`, {
      hint: `remove services.${s.name}.platform, or set it to one of ${runs.join(', ')}`,
    });
  }
}

/**
 * Whether the deploy pulls `svc`'s image or uses the local copy `local` (undefined: none; a copy of
 * another platform than `svc.platform` counts as none). `never` with no copy is `notFound`, naming the
 * service and the image. `now` is the clock (ms).
 */
export function pullDecision(svc: Pick<AppService, 'name' | 'image' | 'platform' | 'pullPolicy'>, local: ImageRecord | undefined, now: number): 'pull' | 'local' {
  const usable = local !== undefined && (svc.platform === undefined || formatPlatform(parsePlatform(local.platform)) === svc.platform) ? local : undefined;
  const policy = svc.pullPolicy ?? 'missing';
  if (policy === 'never') {
    if (usable !== undefined) return 'local';
    throw new BerthError('notFound', `service ${svc.name}: image ${svc.image}${svc.platform !== undefined ? ` (${svc.platform})` : ''} is not on this device, and its pull_policy is never`, {
      hint: `berth pull ${svc.image} (or berth load) on the device first, or use pull_policy: missing`,
    });
  }
  if (usable === undefined || policy === 'always') return 'pull';
  if (policy === 'missing') return 'local';
  return now - usable.pulledAt >= policy.everyMs ? 'pull' : 'local';
}
