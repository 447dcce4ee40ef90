import { formatDuration, parseDuration } from '../duration.js';
import { formatPlatform, parsePlatform } from '../image/platform.js';
import type { ServiceSpec } from '../protocol/types.js';
import type { PullPolicy } from './model.js';
import { atKey, invalidAt, keyPath } from './service-key.js';

/**
 * compose's `platform` and `pull_policy` → the model (AppService.platform, pullPolicy), read once; the
 * deployer (agent/reconcile/pull-policy.ts) decides on the device, where the board and the local images
 * are known, whether to pull, which platform, and refuses a platform the board cannot run.
 */

const DAY_MS = 86_400_000;

/** `platform: linux/arm64` in its normalized spelling (`arm64/v8` → `linux/arm64`), refused naming the key when malformed. */
export function servicePlatform(service: string, svc: ServiceSpec): string | undefined {
  return svc.platform === undefined ? undefined : atKey(keyPath(service, 'platform'), () => formatPlatform(parsePlatform(svc.platform!)));
}

/**
 * `pull_policy`: `always`, `never`, `missing` (`if_not_present`), `daily`, `weekly`, `every_<duration>`
 * (a local image older than that is pulled again). `build` is refused: a board does not build images.
 */
export function servicePullPolicy(service: string, svc: ServiceSpec): PullPolicy | undefined {
  const p = svc.pull_policy;
  const at = keyPath(service, 'pull_policy');
  switch (p) {
    case undefined:
      return undefined;
    case 'always':
    case 'never':
    case 'missing':
      return p;
    case 'if_not_present':
      return 'missing';
    case 'daily':
      return { everyMs: DAY_MS };
    case 'weekly':
      return { everyMs: 7 * DAY_MS };
    case 'build':
      throw invalidAt(at, 'berth runs images and does not build them', `build the image for your boards' platforms in CI, push it to a registry the boards reach, and use pull_policy: missing (or always)`);
    default: {
      const every = /^every_(.+)$/.exec(p)?.[1];
      if (every === undefined) throw invalidAt(at, `"${p}" is not a pull policy: use always, never, missing, if_not_present, daily, weekly or every_<duration>`);
      const everyMs = parseDuration(every, at);
      if (everyMs < 1000) throw invalidAt(at, `"${p}": pull at most once a second`);
      return { everyMs };
    }
  }
}

/** A pull policy in compose's spelling, for `berth compose config` (reads back to the same policy). */
export function pullPolicyText(p: PullPolicy): string {
  if (typeof p === 'string') return p;
  return p.everyMs === DAY_MS ? 'daily' : p.everyMs === 7 * DAY_MS ? 'weekly' : `every_${formatDuration(p.everyMs)}`;
}
